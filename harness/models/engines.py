"""Serving engines the organizer can start on an entry's weights (`backend=transformers-serve`, `backend=vllm`):
their options, the model kinds they serve, their versions and the command that starts each one.

Plain data and argument lists only: the parent reads this to check a run config and to key cells; the model's
child process (harness.models.served) starts the command.
"""
from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Dict, List, Optional, Tuple

from harness.errors import ConfigError
from harness.requests import ModelSpec

HOST = "127.0.0.1"  # engines listen on loopback only (the child has no other interface)
# Options of the OpenAI client (harness.models.openai_api; run config `backend.options.*`), with their defaults.
CLIENT_OPTIONS: Dict[str, Any] = {
    "concurrency": 8,  # requests in flight at once
    "max_retries": 3,  # retries of a failed request (connection error, 408, 409, 429, 5xx), with backoff
    "request_timeout_s": 300.0,  # one attempt's wait for an answer
}
# Options every engine takes, beside the client's.
COMMON_OPTIONS: Dict[str, Any] = {
    **CLIENT_OPTIONS,
    "startup_timeout_s": 900.0,  # how long the engine may take to load the model and answer its health check
    "extra_args": [],  # more command-line arguments for the engine, as a list of strings
}


def _transformers_serve(spec: ModelSpec, port: int, device: str, dtype: str, options: Dict[str, Any]) -> List[str]:
    launcher = "import sys; from transformers.cli.transformers import main; sys.argv[0] = 'transformers'; main()"
    argv = [sys.executable, "-c", launcher, "serve", "--host", HOST, "--port", str(port), "--device", device,
            "--dtype", dtype, "--log-level", "warning"]
    if spec.trust_remote_code:
        argv.append("--trust-remote-code")
    return argv + [str(a) for a in options["extra_args"]] + [spec.location]


def _vllm(spec: ModelSpec, port: int, device: str, dtype: str, options: Dict[str, Any]) -> List[str]:
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", spec.location,
            "--host", HOST, "--port", str(port), "--dtype", dtype, "--seed", "0",
            "--tensor-parallel-size", str(options["tensor_parallel_size"]),
            "--gpu-memory-utilization", str(options["gpu_memory_utilization"]),
            # pure greedy, as the HF backend: no sampling defaults taken from the checkpoint's generation config
            "--generation-config", "vllm"]
    if options["max_model_len"] is not None:
        argv += ["--max-model-len", str(options["max_model_len"])]
    if spec.trust_remote_code:
        argv.append("--trust-remote-code")
    return argv + [str(a) for a in options["extra_args"]]


@dataclass(frozen=True)
class Engine:
    package: str  # the distribution whose version keys the cells
    kinds: Tuple[str, ...]  # submission kinds it serves
    options: Dict[str, Any]  # its own options and their defaults (beside COMMON_OPTIONS)
    command: Callable[[ModelSpec, int, str, str, Dict[str, Any]], List[str]]
    why_not: str = ""  # why other kinds are not served


ENGINES: Dict[str, Engine] = {
    "transformers-serve": Engine(
        "transformers", ("hf-causal",), {}, _transformers_serve,
        "`transformers serve` returns no text for encoder-decoder models (it cuts the prompt's length off the "
        "decoder's output); use backend=hf"),
    "vllm": Engine(
        "vllm", ("hf-causal",),
        {"tensor_parallel_size": 1,  # GPUs one model is sharded over
         "gpu_memory_utilization": 0.9,  # share of each GPU's memory vLLM takes (weights + KV cache)
         "max_model_len": None},  # the window; null: the model's own
        _vllm, "encoder-decoder models are not served by vLLM's OpenAI server; use backend=hf"),
}


def backend_options(name: str, options: Dict[str, Any]) -> Dict[str, Any]:
    """The options of backend `name` (an engine, or `openai` alone), checked; hf takes none of these."""
    if name in ENGINES:
        return engine_options(name, options)
    if name == "openai":
        return _checked(name, options, CLIENT_OPTIONS)
    return dict(options)


def _checked(name: str, options: Dict[str, Any], valid: Dict[str, Any]) -> Dict[str, Any]:
    for key in options:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            raise ConfigError(f"backend.options.{key}: not an option of backend {name}"
                              + (f" (did you mean {close[0]!r}?)" if close else "")
                              + f"; valid: {', '.join(sorted(valid))}")
    return {**valid, **options}


def engine_options(name: str, options: Dict[str, Any]) -> Dict[str, Any]:
    """Every option of engine `name`: defaults filled in; an unknown key is a ConfigError naming the valid ones."""
    chosen = _checked(name, options, {**COMMON_OPTIONS, **ENGINES[name].options})
    if not isinstance(chosen["extra_args"], (list, tuple)):
        raise ConfigError(f"backend.options.extra_args: expected a list of strings, got {chosen['extra_args']!r}")
    return chosen


def engine_version(name: str) -> Optional[str]:
    """The installed version of engine `name`'s package (None where it is not installed)."""
    try:
        return metadata.version(ENGINES[name].package)
    except metadata.PackageNotFoundError:
        return None


def unserved_kind(name: str, kind: str) -> Optional[str]:
    """Why engine `name` cannot serve a `kind` entry (None where it can)."""
    engine = ENGINES[name]
    return None if kind in engine.kinds else f"backend {name} does not serve {kind} entries: {engine.why_not}"
