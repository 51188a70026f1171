"""Model backends: one module each, registered here by name and imported lazily (only the model's child process
imports torch and transformers). The run config's `backend` group picks one (`backend=hf`, the default); a backend
module exposes `load(spec, device=..., batch_size=..., progress=...)` returning a `harness.requests.Backend`.

Adding a backend is one module plus one line in BACKENDS; tests/test_backends.py checks every registered one
against the Protocol.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict

from harness.errors import ConfigError
from harness.requests import Backend, ModelSpec

# name -> module under harness.models exposing `load`
BACKENDS: Dict[str, str] = {
    "hf": "hf",
}
DEFAULT_BACKEND = "hf"


def check_backend(name: str) -> None:
    if name not in BACKENDS:
        raise ConfigError(f"backend.name: {name!r} is not valid; use one of {', '.join(BACKENDS)} (backend=NAME)")


def load_backend(name: str, spec: ModelSpec, *, device: str, batch_size: Any, progress: bool) -> Backend:
    """The registered backend `name`, loaded on `spec`'s model (imports the backend's module now)."""
    check_backend(name)
    module = importlib.import_module(f"{__name__}.{BACKENDS[name]}")
    return module.load(spec, device=device, batch_size=batch_size, progress=progress)
