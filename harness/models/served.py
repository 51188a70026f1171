"""`backend=transformers-serve` and `backend=vllm`: the organizer serves an entry's weights.

Inside the model's child process (so under the same isolation: no network but loopback, inputs only, the job's
wall-clock budget), this starts the engine on the submission's model folder as a child of its own, listening on
127.0.0.1, waits until it answers, answers the job through the `openai` backend, and stops it. The engine runs in
the child's process group, so the harness kills it with the child whatever happens.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

import openai

from harness.models.engines import ENGINES, HOST, engine_options, engine_version, unserved_kind
from harness.models.openai_api import OpenAIBackend
from harness.requests import ModelSpec

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_LOG_TAIL = 2000


def loopback_up() -> None:
    """Bring `lo` up: a fresh network namespace (`unshare --net`) starts with it down, so nothing could connect to
    the engine. A no-op where it is up already (and off Linux, where the harness makes no namespace)."""
    if not sys.platform.startswith("linux"):
        return
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sh14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, struct.pack("16sh14x", b"lo", 0)))[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | _IFF_UP))


def _die_with_parent() -> None:
    """Linux: the engine gets SIGKILL when the process that started it dies, even by kill -9 (the job's process
    group is killed by the harness; this covers a harness that died first and took the job with it)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def resolved(device: str, dtype: str) -> tuple:
    """The device and dtype the HF backend would pick for "auto" (bfloat16 on a GPU, float32 on a CPU)."""
    if device == "auto":
        import torch  # heavy: only to see whether a GPU is there

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "float32" if device == "cpu" else "bfloat16"
    return device, dtype


class EngineProcess:
    """A serving engine started by this process, its log in the working folder (the job's home)."""

    def __init__(self, name: str, argv: list, log: Path):
        self.name, self.log = name, log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            preexec_fn=_die_with_parent)

    def exited(self, wait_s: float = 0.0) -> Optional[str]:
        """None while the engine runs (after waiting up to `wait_s` for it to end); else what became of it, with
        the end of its log."""
        try:
            code = self.process.wait(timeout=wait_s) if wait_s else self.process.poll()
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            return None
        return f"the serving engine ({self.name}) exited with code {code}; its log ends: {self.tail()}"

    def tail(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-_LOG_TAIL:]
        except OSError:
            return ""

    def wait_ready(self, base_url: str, deadline_s: float) -> None:
        """Until the engine lists its models; raises RuntimeError if it exits first or takes too long."""
        client = openai.OpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=10.0)
        give_up = time.monotonic() + deadline_s
        while True:
            why = self.exited()
            if why:
                raise RuntimeError(why)
            try:
                client.models.list()
                return
            except openai.APIError:
                pass
            if time.monotonic() > give_up:
                self.stop()
                raise RuntimeError(f"the serving engine ({self.name}) did not answer within {deadline_s:g} s "
                                   f"(backend.options.startup_timeout_s); its log ends: {self.tail()}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class ServedBackend(OpenAIBackend):
    """The `openai` backend on an engine this process started; `close()` stops the engine."""

    engine: EngineProcess

    def close(self) -> None:
        self.engine.stop()


def load(spec: ModelSpec, *, device: str, batch_size: Any, progress: bool) -> ServedBackend:
    name = spec.backend
    why = unserved_kind(name, spec.kind)
    if why:
        raise ValueError(why)
    if engine_version(name) is None:
        package = ENGINES[name].package
        raise ValueError(f"backend {name} needs the {package!r} package where the model runs: pip install {package}"
                         + (" (or this project's serving extra)" if name == "transformers-serve" else ""))
    options = engine_options(name, spec.options)
    device, dtype = resolved(device, spec.dtype)
    loopback_up()
    port = free_port()
    argv = ENGINES[name].command(spec, port, device, dtype, options)
    engine = EngineProcess(name, argv, Path(os.getcwd()) / f"{name}.log")
    base_url = f"http://{HOST}:{port}/v1"
    try:
        engine.wait_ready(base_url, float(options["startup_timeout_s"]))
    except BaseException:
        engine.stop()
        raise
    info: Dict[str, Any] = {"engine": name, "engine_version": engine_version(name), "device": device, "dtype": dtype,
                            "engine_options": {k: v for k, v in options.items() if k in ENGINES[name].options}}
    backend = ServedBackend(base_url, spec.location, chat=spec.chat_template, reasoning=spec.reasoning,
                            options=options, info=info,
                            # a dying engine drops its connections a moment before it can be reaped
                            alive=lambda: engine.exited(wait_s=5.0))
    backend.engine = engine
    return backend
