"""Model shapes and this machine, as the estimates need them, read without loading a weight: config.json
and the safetensors headers (8 bytes of length, then a JSON table of tensors)."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import struct
from pathlib import Path

from anvil.estimates.arithmetic import Shape, shape_from_config, shape_from_name
from anvil.recipe.models import Model, Synthetic
from anvil.recipe.quantization import Quantize
from anvil.state.checkpoint import shard_sizes

DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "U32": 4,
    "I16": 2,
    "U16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}


def checkpoint_shape(folder: Path) -> Shape | None:
    try:
        config = json.loads((folder / "config.json").read_text())
        sizes = shard_sizes(folder)
        # 4-bit weights count as their packed 32-bit words: count parameters as the config's dtype would
        weight_bytes = sum(size[0] for size in sizes.values())
        parameters = sum(size[1] for size in sizes.values())
        text_bytes = sum(size[2] for size in sizes.values())
        quantized = config.get("quantization") or config.get("text_config", {}).get("quantization")
        if quantized:
            parameters = weight_bytes * 8 / (quantized.get("bits", 4) + 32 / quantized.get("group_size", 64))
        return shape_from_config(config, weight_bytes, parameters, text_bytes)
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None


def synthetic_shape(sizes: Synthetic) -> Shape:
    """A tiny Gemma 4 before it is built: float32 weights, counted as the builder lays them out."""
    h, layers, i, v = sizes.hidden_size, sizes.num_layers, sizes.intermediate_size, sizes.vocab_size
    q, kv = sizes.num_heads * sizes.head_dim, sizes.head_dim
    per_layer = h * (q + 2 * kv) + q * h + 3 * h * i + 16 * (h + v)
    parameters = v * h + layers * per_layer + 60_000  # and a small vision tower
    return Shape(
        parameters * 4, parameters, h, i, layers, sizes.num_heads, 1, sizes.head_dim, v, (parameters - 60_000) * 4
    )


def hub_cached_config(repo: str) -> Path | None:
    """The newest snapshot of a Hub repo already in the local Hugging Face cache, without importing it."""
    home = os.environ.get("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
    cache = Path(os.environ.get("HF_HUB_CACHE", os.path.join(home, "hub")))
    snapshots = cache / f"models--{repo.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime) if snapshots.is_dir() else []
    return found[-1].parent if found else None


def quantized_shape(parent: Shape, quantize: Quantize) -> Shape:
    """A quantized node's shape: its language weights at the quantized bits (scales and biases included),
    its towers as the parent's (mlx-vlm does not quantize them)."""
    parent_bits = round(8 * parent.bytes_per_weight) or 16
    text = parent.text_bytes * quantize.weight_bits(parent_bits) / parent_bits
    return dataclasses.replace(
        parent, weight_bytes=parent.weight_bytes - parent.text_bytes + text, text_weight_bytes=text
    )


def root_shape(model: Model, recipe_root: Path, built: Path | None) -> Shape | None:
    """The shape of a lineage's root model: from its checkpoint when built or on disk, else from the recipe."""
    source = model.source or ""
    scheme, _, where = source.partition(":")
    folder = built
    if folder is None and scheme == "path":
        folder = recipe_root / where
    if folder is None and scheme == "hf":
        folder = hub_cached_config(where)
    if folder is not None and (shape := checkpoint_shape(folder)) is not None:
        return shape
    if scheme == "synthetic":
        return synthetic_shape(model.synthetic or Synthetic())
    return shape_from_name(where) if scheme == "hf" else None


def total_memory() -> float:
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def machine() -> str:
    """This machine, as the history tells machines apart."""
    return f"{platform.system()}-{platform.machine()} {os.cpu_count()} cpus {total_memory() / 1e9:.0f} GB"
