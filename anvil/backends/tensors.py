"""Reading safetensors with MLX, typed: `mx.load` returns one of several shapes by its arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast


def read(path: Path) -> dict[str, Any]:
    """The tensors of a .safetensors file, by name (MLX arrays)."""
    import mlx.core as mx

    return cast(dict[str, Any], mx.load(str(path)))
