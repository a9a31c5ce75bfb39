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
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anvil.state.checkpoint import read_header

CHUNK = 16 << 20
BLOCK_VALUES = 1 << 20
FLOAT_DTYPES = {"F32": "float32", "F16": "float16"}  # and BF16, which numpy lacks: carried as bits
Change = Callable[[str, slice, Any], Any]  # (tensor name, rows, float32 block of those rows) -> new block


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
        bits = values.astype(np.uint32)
        bits <<= 16  # in place: `bits << 16` into a new array takes numpy 20x as long here
        return bits.view(np.float32).reshape(shape)
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


def _changed(raw, info: dict[str, Any], change: Change, name: str, into=None, workers=None):
    """A tensor's bytes (`raw`, any buffer) with `change(name, rows, block)` applied to its float32 values, a
    block of rows at a time (about a million values: cache-sized), the blocks spread over the cores (numpy lets
    go of the GIL) on `workers` (a thread pool; None: this thread); written into `into` (a writable buffer of the
    same size) when given, else a new one."""
    import numpy as np

    dtype, shape = info["dtype"], list(info["shape"]) or [1]
    storage = np.frombuffer(raw, dtype=_storage(dtype)).reshape(shape)
    out = np.empty_like(storage) if into is None else np.frombuffer(into, dtype=storage.dtype).reshape(shape)
    step = max(1, BLOCK_VALUES // max(1, storage[0].size if len(storage) else 1))

    def one(start: int) -> None:
        rows = slice(start, start + step)
        part = storage[rows]
        block = change(name, rows, to_float32(part, dtype, list(part.shape)))
        if block.shape != part.shape:
            raise ValueError(f"{name}: the rewritten tensor changed shape")
        _store(np.ascontiguousarray(block, dtype=np.float32), dtype, out[rows])

    starts = range(0, shape[0], step)
    list(workers.map(one, starts) if workers is not None else map(one, starts))
    return out


def _merge_workers():
    """Half the cores: numpy's BLAS spreads each block's matmul over all of them already, and the copier
    (rewrite_all) needs one; more threads only oversubscribe them."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(min(8, max(1, (os.cpu_count() or 1) // 2)), thread_name_prefix="anvil-merge")


@dataclass(frozen=True)
class Rewrite:
    """One shard to copy: `names` are the tensors replaced on the way, `metadata` the new header's."""

    src: Path
    dst: Path
    names: set[str]
    metadata: dict[str, str]


def rewrite(src: Path, dst: Path, change: Change, names: set[str], metadata: dict[str, str]) -> int:
    """Copy shard `src` to `dst`, the tensors in `names` replaced (see `rewrite_all`); the bytes of tensor data
    written."""
    return rewrite_all([Rewrite(src, dst, names, metadata)], change)[0]


def rewrite_all(jobs: list[Rewrite], change: Change, done: Callable[[int], None] = lambda i: None) -> list[int]:
    """Copy each shard, its tensors in `names` replaced: `change(name, rows, block)` gets each block of rows (a
    slice of the first axis) as a float32 numpy array and returns the block's new values, stored back in the
    tensor's dtype. Every tensor keeps its offsets, so each is written in place: one thread copies the others,
    shard after shard, while the changed ones (the last layers, in the last shards) are computed, so the whole
    costs about the copy or the arithmetic, whichever is longer, not both. `done(i)`: job i is written.
    Returns each shard's bytes of tensor data."""
    from concurrent.futures import ThreadPoolExecutor

    with ExitStack() as files:
        shards = [_open(job, files) for job in jobs]
        # One buffer to read a changed tensor into and one to rewrite it into, reused from tensor to tensor:
        # fresh memory for each would be mapped and faulted in again (a third of the merge's time).
        largest = max((_size(info) for shard in shards for _, info, _, _ in shard.changed), default=0)
        read, written = memoryview(bytearray(largest)), memoryview(bytearray(largest))
        copier = ThreadPoolExecutor(1, "anvil-copy")
        workers = files.enter_context(_merge_workers())  # shut down with the files, however this ends
        copies = [copier.submit(_copy_all, shard) for shard in shards]
        try:
            for shard in shards:
                for name, info, src_offset, dst_offset in shard.changed:
                    raw, size = read[: _size(info)], _size(info)
                    if _read_at(shard.source, raw, src_offset) != size:
                        raise ValueError(f"{shard.name}: truncated in tensor {name}")
                    _write_at(shard.out, _changed(raw, info, change, name, written[:size], workers), dst_offset)
            for i, copied in enumerate(copies):
                copied.result()
                done(i)
        finally:
            copier.shutdown(wait=True, cancel_futures=True)  # a failure stops the copies still to come
        return [shard.size for shard in shards]


@dataclass(frozen=True)
class _Open:
    name: str  # the source's file name, for messages
    source: int
    out: int
    changed: list[tuple[str, dict[str, Any], int, int]]  # name, header entry, offset in source, offset in out
    same: list[tuple[str, int, int, int]]  # name, offset in source, offset in out, length
    size: int  # bytes of tensor data


def _open(job: Rewrite, files: ExitStack) -> _Open:
    """The shard opened, its copy's header written and its tensors sorted into the changed and the others."""
    head, start = read_header(job.src)
    entries = sorted(((k, v) for k, v in head.items() if k != "__metadata__"), key=lambda kv: kv[1]["data_offsets"])
    text = json.dumps({"__metadata__": job.metadata, **dict(entries)}, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data then starts 8-byte aligned
    base, expected = 8 + len(text), 0
    for name, info in entries:
        if info["data_offsets"][0] != expected:
            raise ValueError(f"{job.src.name}: tensor {name} is not where the header says (gaps between tensors)")
        expected = info["data_offsets"][1]
    source = files.enter_context(open(job.src, "rb")).fileno()  # noqa: SIM115 (`files` closes them)
    out = files.enter_context(open(job.dst, "wb"))  # noqa: SIM115
    out.write(struct.pack("<Q", len(text)) + text)
    out.flush()
    changed = [(n, i, start + i["data_offsets"][0], base + i["data_offsets"][0]) for n, i in entries if n in job.names]
    same = [
        (n, start + i["data_offsets"][0], base + i["data_offsets"][0], i["data_offsets"][1] - i["data_offsets"][0])
        for n, i in entries
        if n not in job.names
    ]
    return _Open(job.src.name, source, out.fileno(), changed, same, expected)


def _copy_all(shard: _Open) -> None:
    for name, src_offset, dst_offset, length in shard.same:
        _copy_range(
            shard.source, shard.out, src_offset, dst_offset, length, f"{shard.name}: truncated in tensor {name}"
        )


def _size(info: dict[str, Any]) -> int:
    return info["data_offsets"][1] - info["data_offsets"][0]


def _read_at(fd: int, into: memoryview, offset: int) -> int:
    """Fill `into` from `fd` at `offset` (positional: safe beside the copier); the bytes read, fewer at the end
    of the file."""
    done = 0
    while done < len(into):
        if hasattr(os, "preadv"):
            got = os.preadv(fd, [into[done:]], offset + done)
        else:  # a platform without preadv: through a temporary
            chunk = os.pread(fd, min(CHUNK, len(into) - done), offset + done)
            into[done : done + len(chunk)], got = chunk, len(chunk)
        if got == 0:
            break
        done += got
    return done


def _write_at(fd: int, data, offset: int) -> None:
    view = memoryview(data)
    view = view.cast("B") if view.nbytes else memoryview(b"")  # bytes, whatever the shape: a short write resumes
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
