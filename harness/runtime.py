"""Where and in what precision a model entry runs, decided in the parent before its cells' keys are computed.

`device: auto` and `dtype: auto` are resolved here, and the model's process is given the resolved values, so the
prediction key (requested device + resolved device type + dtype) always says what ran: a CPU-fp32 record never
serves a GPU-bf16 run. The resolution must not import torch (a no-op run loads no model and stays fast), so
`auto` means CUDA when torch was built with CUDA (read from its version file) and this process can see an NVIDIA
GPU (the driver's device list, `CUDA_VISIBLE_DEVICES`). Where torch is already imported, it is asked directly.
A probe that is wrong (a broken driver) makes the model's process fail loudly with `device=cpu` as the fix,
never run on another device than its record says.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import re
import sys
from pathlib import Path

DTYPES = ("float32", "bfloat16", "float16")
_NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def _torch_built_with_cuda() -> bool:
    """torch's `version.cuda` without importing torch: None in a CPU build."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    try:
        text = (Path(list(spec.submodule_search_locations)[0]) / "version.py").read_text(encoding="utf-8")
    except OSError:
        return False
    match = re.search(r"^cuda(?:\s*:[^=]*)?=\s*(.+)$", text, re.M)
    return match is not None and match.group(1).strip() != "None"


def _gpu_visible() -> bool:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    try:
        return any(_NVIDIA_GPUS.iterdir()) or Path("/dev/nvidia0").exists()
    except OSError:
        return Path("/dev/nvidia0").exists()


def _cuda_usable_uncached() -> bool:
    if "torch" in sys.modules:  # already paid for: ask torch itself
        return bool(sys.modules["torch"].cuda.is_available())
    return _torch_built_with_cuda() and _gpu_visible()


@functools.lru_cache(maxsize=None)
def cuda_usable() -> bool:
    return _cuda_usable_uncached()


def device_type(requested: str) -> str:
    """"cpu" or "cuda": what `device` (auto | cpu | cuda | cuda:N) runs on."""
    if requested == "auto":
        return "cuda" if cuda_usable() else "cpu"
    return requested.split(":", 1)[0]


def resolved_device(requested: str) -> str:
    """The device the model's process is given: `auto` resolved, an explicit device as it was asked."""
    return device_type(requested) if requested == "auto" else requested


def resolve_dtype(dtype: str, device: str) -> str:
    """A manifest's dtype on a device type: `auto` is bfloat16 on CUDA, float32 on CPU."""
    if dtype == "auto":
        return "bfloat16" if device == "cuda" else "float32"
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be 'auto' or one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype
