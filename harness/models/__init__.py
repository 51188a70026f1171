"""Model backends: one module each, registered here by name and imported lazily (only the model's child process
imports torch and transformers). The run config's `backend` group picks one (`backend=hf`, the default); a backend
module exposes `load(spec, *, device, batch_size, progress)` returning a `harness.requests.Backend` (the spec
carries the backend's name, its checked `backend.options` and, for endpoint entries, the endpoint). The parent
resolves the name to its module (`backend_module`) and sends the module to the model's child process, which
imports it there.

Adding a backend is one module plus one line in BACKENDS; tests/test_backends.py checks every registered one
against the Protocol.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, Optional

from harness.errors import ConfigError
from harness.models.engines import ENGINES, backend_options, engine_version, unserved_kind
from harness.requests import Backend, ModelSpec

# name -> the module exposing `load`
BACKENDS: Dict[str, str] = {
    "hf": "harness.models.hf",
    "openai": "harness.models.openai_api",  # an OpenAI-compatible endpoint (`kind: endpoint` entries)
    "transformers-serve": "harness.models.served",  # engines started on the entry's weights (harness.models.engines)
    "vllm": "harness.models.served",
}
DEFAULT_BACKEND = "hf"
ENDPOINT_BACKEND = "openai"  # what `kind: endpoint` entries run through, whatever the run's backend


def check_backend(name: str, options: Optional[Dict[str, Any]] = None) -> None:
    """A registered backend name and its options (a ConfigError names the bad key and the valid ones)."""
    if name not in BACKENDS:
        raise ConfigError(f"backend.name: {name!r} is not valid; use one of {', '.join(BACKENDS)} (backend=NAME)")
    backend_options(name, dict(options or {}))


def unsupported(name: str, kind: str) -> Optional[str]:
    """Why backend `name` cannot run a `kind` model entry (None where it can)."""
    if name in ENGINES:
        return unserved_kind(name, kind)
    if name == ENDPOINT_BACKEND:
        return "backend=openai runs endpoint entries (kind: endpoint) only; use backend=hf, transformers-serve or vllm"
    return None


def engine_facts(name: str) -> Dict[str, Any]:
    """The engine behind backend `name` and its installed version (keys and provenance); {} for hf."""
    return {"engine": name, "engine_version": engine_version(name)} if name in ENGINES else {}


def backend_module(name: str) -> str:
    """The module of the registered backend `name` (what the parent tells the model's process to import)."""
    check_backend(name)
    return BACKENDS[name]


def load_backend(module: str, spec: ModelSpec, *, device: str, batch_size: Any, progress: bool) -> Backend:
    """`spec`'s model loaded by the backend in `module` (imported now: in the model's process only)."""
    loaded: Backend = importlib.import_module(module).load(spec, device=device, batch_size=batch_size,
                                                           progress=progress)
    return loaded
