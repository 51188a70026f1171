"""Model backends: one module each, registered here by name and imported lazily (only the model's child process
imports torch and transformers). The run config's `backend` group picks one (`backend=hf`, the default); a backend
module exposes `load(spec, *, device, batch_size, progress, options)` returning a `harness.requests.Backend`
(`options`: the config's `backend.options`, which the module checks). The parent resolves the name to its module
(`backend_module`) and sends the module to the model's child process, which imports it there.

Adding a backend is one module plus one line in BACKENDS; tests/test_backends.py checks every registered one
against the Protocol.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, Mapping, Optional

from harness.errors import ConfigError
from harness.requests import Backend, ModelSpec

# name -> the module exposing `load`
BACKENDS: Dict[str, str] = {
    "hf": "harness.models.hf",
}
DEFAULT_BACKEND = "hf"


def check_backend(name: str) -> None:
    if name not in BACKENDS:
        raise ConfigError(f"backend.name: {name!r} is not valid; use one of {', '.join(BACKENDS)} (backend=NAME)")


def backend_module(name: str) -> str:
    """The module of the registered backend `name` (what the parent tells the model's process to import)."""
    check_backend(name)
    return BACKENDS[name]


def load_backend(module: str, spec: ModelSpec, *, device: str, batch_size: Any, progress: bool,
                 options: Optional[Mapping[str, Any]] = None) -> Backend:
    """`spec`'s model loaded by the backend in `module` (imported now: in the model's process only)."""
    loaded: Backend = importlib.import_module(module).load(spec, device=device, batch_size=batch_size,
                                                           progress=progress, options=dict(options or {}))
    return loaded
