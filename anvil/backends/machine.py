"""The machine and the packages that built and show the lineage (the dashboard's architecture section):
what MLX computes on here is asked of MLX itself."""

from __future__ import annotations

import os
import platform
from importlib import metadata

PACKAGES = ("anvil", "mlx", "mlx-lm", "mlx-lm-lora", "mlx-vlm", "transformers")


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine() -> dict[str, object]:
    import psutil

    return {"system": platform.system(), "arch": platform.machine(), "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "accelerator": _accelerator()}  # fmt: skip


def _accelerator() -> str:
    """What MLX computes on here: Apple silicon's GPU (Metal), CUDA, or the CPU."""
    try:
        import mlx.core as mx
    except ImportError:
        return "unknown"
    if mx.metal.is_available():
        return "Metal GPU"
    cuda = getattr(mx, "cuda", None)
    if cuda is not None and cuda.is_available():
        return "CUDA GPU"
    return "CPU"


def describe() -> dict[str, object]:
    """The packages and the machine, as the dashboard shows them."""
    return {"packages": versions(), "machine": machine()}
