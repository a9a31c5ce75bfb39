"""Safetensors shards streamed a tensor at a time: the header read alone, every tensor the caller does not
change copied byte for byte, a changed one read, rewritten and written in place. A shard of any size
costs the memory of its largest changed tensor, not of the shard.

The format: 8 bytes (little-endian header length), a JSON header {name: {dtype, shape, data_offsets}},
then the data; offsets are relative to the end of the header. A rewrite keeps every tensor's dtype and
shape, so the offsets of the copy are those of the original."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHUNK = 16 << 20
FLOAT_DTYPES = {"F32": "float32", "F16": "float16"}  # and BF16, which numpy lacks: carried as bits


def header(path: Path) -> tuple[dict[str, Any], int]:
    """The header of a shard and where its data starts."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length)), 8 + length


def read_tensor(path: Path, info: dict[str, Any], data_start: int, rows: list[int] | None = None):
    """One tensor of a shard as a float32 numpy array (only `rows` of its first axis, if given), nothing
    else of the file read."""
    begin, end = info["data_offsets"]
    shape = list(info["shape"])
    with open(path, "rb") as f:
        if rows is None:
            f.seek(data_start + begin)
            raw = f.read(end - begin)
        else:
            row_bytes = (end - begin) // shape[0]
            parts = []
            for row in rows:
                f.seek(data_start + begin + row * row_bytes)
                parts.append(f.read(row_bytes))
            raw, shape = b"".join(parts), [len(rows), *shape[1:]]
    return to_float32(raw, info["dtype"], shape)


def to_float32(raw: bytes, dtype: str, shape: list[int]):
    import numpy as np

    if dtype == "BF16":  # bfloat16 is the top half of a float32
        return (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"cannot rewrite a {dtype} tensor")
    return np.frombuffer(raw, dtype=FLOAT_DTYPES[dtype]).astype(np.float32).reshape(shape)


def from_float32(array, dtype: str) -> bytes:
    """The tensor's bytes in `dtype`, rounded to nearest, ties to even (as MLX and PyTorch round)."""
    import numpy as np

    if dtype == "BF16":
        bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)
        rounded = (bits + (np.uint32(0x7FFF) + ((bits >> 16) & 1))) >> 16
        nan = np.isnan(array)
        if nan.any():  # rounding must not turn a NaN into an infinity
            rounded[nan] = 0x7FC0
        return rounded.astype(np.uint16).tobytes()
    return np.ascontiguousarray(array, dtype=FLOAT_DTYPES[dtype]).tobytes()


def rewrite(src: Path, dst: Path, change: Callable[[str, Any], Any], names: set[str],
            metadata: dict[str, str]) -> int:  # fmt: skip
    """Copy shard `src` to `dst`, the tensors in `names` replaced by `change(name, tensor)` (a float32 numpy
    array in, one of the same shape out, stored back in the tensor's dtype); returns the bytes of tensor
    data written."""
    head, start = header(src)
    entries = {k: v for k, v in head.items() if k != "__metadata__"}
    text = json.dumps({"__metadata__": metadata, **entries}, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data then starts 8-byte aligned
    with open(src, "rb") as source, open(dst, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text)
        for name, info in sorted(entries.items(), key=lambda item: item[1]["data_offsets"][0]):
            begin, end = info["data_offsets"]
            if out.tell() - 8 - len(text) != begin:
                raise ValueError(f"{src.name}: tensor {name} is not where the header says (gaps between tensors)")
            if name in names:
                new = from_float32(change(name, read_tensor(src, info, start)), info["dtype"])
                if len(new) != end - begin:
                    raise ValueError(f"{name}: the rewritten tensor changed size")
                out.write(new)
                continue
            _copy_range(source, out, start + begin, end - begin, f"{src.name}: truncated in tensor {name}")
        return out.tell() - 8 - len(text)


def _copy_range(source, out, offset: int, length: int, truncated: str) -> None:
    """`length` bytes of `source` from `offset` appended to `out`: in the kernel where it can (Linux's
    copy_file_range), through a buffer elsewhere."""
    out.flush()
    if hasattr(os, "copy_file_range"):
        try:
            while length:
                done = os.copy_file_range(source.fileno(), out.fileno(), length, offset)
                if done == 0:
                    raise ValueError(truncated)
                offset, length = offset + done, length - done
            out.seek(0, os.SEEK_END)
            return
        except OSError:  # a file system that cannot (some network mounts): the buffered way
            out.seek(0, os.SEEK_END)
    source.seek(offset)
    while length:
        chunk = source.read(min(CHUNK, length))
        if not chunk:
            raise ValueError(truncated)
        out.write(chunk)
        length -= len(chunk)
