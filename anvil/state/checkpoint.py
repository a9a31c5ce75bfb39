"""A checkpoint folder as files: its safetensors shards and their headers (8 bytes of little-endian length,
then a JSON table {name: {dtype, shape, data_offsets}}, offsets relative to the header's end), read without
loading a tensor. The one reader of that header: the fuse streams by it, the estimates size by it, the
dashboard names a checkpoint's dtype by it."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

from anvil.errors import AnvilError

DTYPE_NAMES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}


def shards(folder: Path) -> list[Path]:
    """The safetensors shards of a checkpoint folder, in order; an error if it has none."""
    found = sorted(folder.glob("*.safetensors"))
    if not found:
        raise AnvilError(f"{folder}: no *.safetensors weights (expected a model checkpoint folder)")
    return found


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """The header of a shard and where its data starts."""
    with open(path, "rb") as f:
        try:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > path.stat().st_size:
                raise ValueError(f"a header of {length} bytes in a file of {path.stat().st_size}")
            header = json.loads(f.read(length))
        except (struct.error, ValueError) as e:
            raise AnvilError(f"{path}: not a safetensors file ({e})") from None
        return header, 8 + length


def weight_dtype(folder: Path) -> str:
    """The dtype of a checkpoint's projection weights (`float32`, `bfloat16`, ...)."""
    for shard in shards(folder):
        for key, info in read_header(shard)[0].items():
            if key.endswith("q_proj.weight"):
                return DTYPE_NAMES.get(info["dtype"], info["dtype"].lower())
    raise AnvilError(f"{folder}: no q_proj weights found (expected a language model checkpoint)")


TOWERS = ("vision", "audio")  # tensors of the towers a text-only load (training) leaves out


def shard_sizes(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Each safetensors shard of a checkpoint: (bytes of its tensors, elements, bytes of text tensors)."""
    sizes = {}
    for shard in sorted(folder.glob("*.safetensors")):
        header = read_header(shard)[0]
        nbytes = elements = text = 0
        for name, tensor in header.items():
            if name == "__metadata__":
                continue
            size = tensor["data_offsets"][1] - tensor["data_offsets"][0]
            nbytes, elements = nbytes + size, elements + math.prod(tensor["shape"])
            text += size if not any(tower in name for tower in TOWERS) else 0
        sizes[shard.name] = (nbytes, elements, text)
    return sizes


def sizes(folder: Path) -> dict[str, int]:
    """Bytes of a checkpoint's tensors by part: `language` (all but the towers, the scales and biases of its
    quantized layers included), `towers` (vision and audio, with their embedders) and `total`."""
    shards(folder)  # a folder without weights is an error, not zero bytes
    found = shard_sizes(folder).values()
    total, language = sum(s[0] for s in found), sum(s[2] for s in found)
    return {"language": language, "towers": total - language, "total": total}


def tensor_shapes(path: Path) -> dict[str, list[int]]:
    """Each tensor of one safetensors file by name, with its shape."""
    return {name: entry["shape"] for name, entry in read_header(path)[0].items() if name != "__metadata__"}


def layout(folder: Path) -> dict[str, list[int]]:
    """Every tensor of a checkpoint by name, with its shape: what a fuse keeps (it changes values only)."""
    return {name: shape for shard in shards(folder) for name, shape in tensor_shapes(shard).items()}


def layout_differences(expected: Path, found: Path) -> list[str]:
    """How checkpoint `found` departs from `expected`'s architecture: its model type, and tensors missing,
    extra or of another shape (a few of each, counted)."""
    try:
        types = [json.loads((f / "config.json").read_text()).get("model_type") for f in (expected, found)]
    except (OSError, ValueError) as e:
        return [f"config.json unreadable ({type(e).__name__}: {e})"]
    if types[0] != types[1]:
        return [f"model_type is {types[1]!r}, the parent's is {types[0]!r} (another architecture)"]
    want, have = layout(expected), layout(found)
    out = []
    for what, names in (
        ("missing", sorted(want.keys() - have.keys())),
        ("not in the parent", sorted(have.keys() - want.keys())),
    ):
        if names:
            out.append(f"{len(names)} tensor(s) {what}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}")
    reshaped = [n for n in sorted(want.keys() & have.keys()) if want[n] != have[n]]
    if reshaped:
        first = reshaped[0]
        out.append(f"{len(reshaped)} tensor(s) of another shape: {first} {have[first]}, the parent's {want[first]}")
    return out
