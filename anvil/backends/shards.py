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
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHUNK = 16 << 20
BLOCK_VALUES = 1 << 20
_POOL = None  # the merge's worker threads, made on first use
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


def _storage(dtype: str) -> str:
    """The numpy dtype a tensor's bytes are read as: its own, or for BF16 (which numpy lacks) its bits."""
    if dtype == "BF16":
        return "uint16"
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"cannot rewrite a {dtype} tensor")
    return FLOAT_DTYPES[dtype]


def to_float32(raw, dtype: str, shape: list[int]):
    """A tensor's bytes (or a numpy array of its storage: uint16 bits for BF16) as a float32 array."""
    import numpy as np

    values = np.frombuffer(raw, dtype=_storage(dtype)) if isinstance(raw, bytes) else raw
    if dtype == "BF16":  # bfloat16 is the top half of a float32
        return (values.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return values.astype(np.float32).reshape(shape)


def from_float32(array, dtype: str) -> bytes:
    """The tensor's bytes in `dtype`, rounded to nearest, ties to even (as MLX and PyTorch round)."""
    import numpy as np

    out = np.empty(array.shape, dtype=_storage(dtype))
    _store(np.array(array, dtype=np.float32), dtype, out)
    return out.tobytes()


def _store(values, dtype: str, out) -> None:
    """float32 `values` (consumed: rounded in place) stored into `out`, a C-ordered array of the tensor's storage
    (a block of whole rows is one) of the same shape."""
    import numpy as np

    if dtype != "BF16":
        out[...] = values
        return
    flat = values.reshape(values.shape[0] if values.ndim else 1, -1)
    into = out.reshape(flat.shape)  # a view, out being C-ordered: writing it writes out
    nan = np.isnan(flat) if flat.size and np.isnan(flat.max()) else None
    bits = flat.view(np.uint32)
    carry = bits >> 16
    carry &= 1
    carry += 0x7FFF
    bits += carry  # rounded to nearest, ties to even; the top half is then the bfloat16
    into[...] = bits.view(np.uint16)[:, 1::2] if sys.byteorder == "little" else bits >> 16
    if nan is not None:  # rounding must not turn a NaN into an infinity
        into[nan] = 0x7FC0


def _changed(raw: bytes, info: dict[str, Any], change: Callable[[str, slice, Any], Any], name: str) -> bytes:
    """A tensor's bytes with `change(name, rows, block)` applied to its float32 values, a block of rows at a
    time (about a million values: cache-sized), the blocks spread over the cores (numpy lets go of the GIL)."""
    import numpy as np

    dtype, shape = info["dtype"], list(info["shape"]) or [1]
    storage = np.frombuffer(raw, dtype=_storage(dtype)).reshape(shape)
    out = np.empty_like(storage)
    step = max(1, BLOCK_VALUES // max(1, storage[0].size if len(storage) else 1))

    def one(start: int) -> None:
        rows = slice(start, start + step)
        part = storage[rows]
        block = change(name, rows, to_float32(part, dtype, list(part.shape)))
        if block.shape != part.shape:
            raise ValueError(f"{name}: the rewritten tensor changed shape")
        _store(np.ascontiguousarray(block, dtype=np.float32), dtype, out[rows])

    list(_workers().map(one, range(0, shape[0], step)))
    return out.tobytes()


def _workers():
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="anvil-merge")
    return _POOL


def rewrite(src: Path, dst: Path, change: Callable[[str, slice, Any], Any], names: set[str],
            metadata: dict[str, str]) -> int:  # fmt: skip
    """Copy shard `src` to `dst`, the tensors in `names` replaced: `change(name, rows, block)` gets each block
    of rows (a slice of the first axis) as a float32 numpy array and returns the block's new values, stored
    back in the tensor's dtype; returns the bytes of tensor data written. Every tensor keeps its offsets, so
    each is written in place: the others are copied by a thread of their own while these are computed."""
    head, start = header(src)
    entries = sorted(((k, v) for k, v in head.items() if k != "__metadata__"), key=lambda kv: kv[1]["data_offsets"])
    text = json.dumps({"__metadata__": metadata, **dict(entries)}, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data then starts 8-byte aligned
    base, expected = 8 + len(text), 0
    for name, info in entries:
        if info["data_offsets"][0] != expected:
            raise ValueError(f"{src.name}: tensor {name} is not where the header says (gaps between tensors)")
        expected = info["data_offsets"][1]
    from concurrent.futures import ThreadPoolExecutor

    with open(src, "rb") as source, open(dst, "wb") as out, ThreadPoolExecutor(1, "anvil-copy") as copier:
        out.write(struct.pack("<Q", len(text)) + text)
        out.flush()
        same = [(start + i["data_offsets"][0], base + i["data_offsets"][0], i["data_offsets"][1] - i["data_offsets"][0],
                 f"{src.name}: truncated in tensor {n}") for n, i in entries if n not in names]  # fmt: skip

        def copy_the_rest() -> None:
            for job in same:
                _copy_range(source.fileno(), out.fileno(), *job)

        copied = copier.submit(copy_the_rest)
        try:
            for name, info in entries:
                if name in names:
                    begin, end = info["data_offsets"]
                    raw = os.pread(source.fileno(), end - begin, start + begin)
                    if len(raw) != end - begin:
                        raise ValueError(f"{src.name}: truncated in tensor {name}")
                    _write_at(out.fileno(), _changed(raw, info, change, name), base + begin)
        finally:
            copied.result()
        return expected


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done


def _copy_range(source: int, out: int, src_offset: int, dst_offset: int, length: int, truncated: str) -> None:
    """`length` bytes of `source` from `src_offset` written to `out` at `dst_offset`: in the kernel where it
    can (Linux's copy_file_range), through a buffer elsewhere. Positional: safe beside other writers."""
    if hasattr(os, "copy_file_range"):
        try:
            while length:
                done = os.copy_file_range(source, out, length, src_offset, dst_offset)
                if done == 0:
                    raise ValueError(truncated)
                src_offset, dst_offset, length = src_offset + done, dst_offset + done, length - done
            return
        except OSError:  # a file system that cannot (some network mounts): the buffered way
            pass
    while length:
        chunk = os.pread(source, min(CHUNK, length), src_offset)
        if not chunk:
            raise ValueError(truncated)
        _write_at(out, chunk, dst_offset)
        src_offset, dst_offset, length = src_offset + len(chunk), dst_offset + len(chunk), length - len(chunk)
