"""Shards streamed a tensor at a time: the bytes the fuse writes are what MLX would write."""

from __future__ import annotations

import os

import mlx.core as mx
import numpy as np
import pytest

from anvil.backends import shards
from anvil.state.checkpoint import read_header


def test_bfloat16_rounds_as_mlx_does_nan_and_infinity_included():
    x = np.concatenate(
        [
            np.random.default_rng(0).standard_normal(50000).astype(np.float32) * 100,
            np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 3.3895314e38], dtype=np.float32),
        ]
    )
    ours = np.frombuffer(shards.from_float32(x, "BF16"), dtype=np.uint16)
    theirs = np.array(mx.array(x).astype(mx.bfloat16).view(mx.uint16))
    finite = np.isfinite(x)
    assert (ours[finite] == theirs[finite]).all() and (ours[~finite & ~np.isnan(x)] == theirs[np.isinf(x)]).all()
    assert np.isnan(shards.to_float32(ours.tobytes(), "BF16", [len(x)])[np.isnan(x)]).all()


def test_a_rewrite_copies_every_other_tensor_byte_for_byte_and_mlx_reads_the_result(tmp_path):
    tensors = {
        "a.weight": mx.arange(12, dtype=mx.float32).reshape(3, 4).astype(mx.bfloat16),
        "b.bias": mx.ones((5,), dtype=mx.float16),
        "c.ids": mx.arange(7, dtype=mx.int32),
    }
    mx.save_safetensors(str(tmp_path / "in.safetensors"), tensors)
    written = shards.rewrite(
        tmp_path / "in.safetensors",
        tmp_path / "out.safetensors",
        lambda name, rows, w: w * 2,
        {"a.weight"},
        {"format": "mlx"},
    )
    back = mx.load(str(tmp_path / "out.safetensors"))
    assert written == sum(v.nbytes for v in tensors.values())
    assert mx.array_equal(back["a.weight"], tensors["a.weight"] * 2) and back["a.weight"].dtype == mx.bfloat16
    assert mx.array_equal(back["b.bias"], tensors["b.bias"]) and mx.array_equal(back["c.ids"], tensors["c.ids"])
    rows = shards.read_tensor(tmp_path / "out.safetensors", *_info(tmp_path / "out.safetensors", "a.weight"), [2, 0])
    assert rows.tolist() == [[16.0, 18.0, 20.0, 22.0], [0.0, 2.0, 4.0, 6.0]]


def _info(path, name):
    head, start = read_header(path)
    return head[name], start


def test_a_tensor_rewritten_in_blocks_of_rows_is_the_tensor_rewritten_whole(tmp_path, monkeypatch):
    weight = mx.random.normal((13, 6), key=mx.random.key(0)).astype(mx.bfloat16)
    mx.save_safetensors(str(tmp_path / "in.safetensors"), {"w": weight, "v": mx.ones((4, 4), dtype=mx.float16)})
    offset = np.arange(13 * 6, dtype=np.float32).reshape(13, 6) / 7

    def change(name, rows, w):
        return w * 1.5 + offset[rows] if name == "w" else w - 3

    monkeypatch.setattr(shards, "BLOCK_VALUES", 12)  # two rows a block: seven blocks, the last one short
    shards.rewrite(tmp_path / "in.safetensors", tmp_path / "out.safetensors", change, {"w", "v"}, {})
    back = mx.load(str(tmp_path / "out.safetensors"))
    whole = (np.array(weight.astype(mx.float32)) * 1.5 + offset).astype(np.float32)
    assert np.array(back["w"].view(mx.uint16)).tobytes() == shards.from_float32(whole, "BF16")
    assert mx.array_equal(back["v"], mx.full((4, 4), -2.0, dtype=mx.float16))


@pytest.mark.parametrize("changed", [set(), {"v"}, {"w"}, {"v", "w"}])
def test_a_truncated_shard_is_refused_whichever_tensor_it_cuts(tmp_path, changed):
    mx.save_safetensors(str(tmp_path / "in.safetensors"), {"v": mx.ones((4, 4)), "w": mx.ones((8, 8))})
    data = (tmp_path / "in.safetensors").read_bytes()
    (tmp_path / "in.safetensors").write_bytes(data[:-10])
    with pytest.raises(ValueError, match="in.safetensors: truncated in tensor"):
        shards.rewrite(tmp_path / "in.safetensors", tmp_path / "out.safetensors", lambda n, r, w: w, changed, {})


def test_an_empty_tensor_is_rewritten_as_empty(tmp_path):
    mx.save_safetensors(str(tmp_path / "in.safetensors"), {"e": mx.zeros((0, 3)), "w": mx.ones((2, 3))})
    shards.rewrite(tmp_path / "in.safetensors", tmp_path / "out.safetensors", lambda n, r, w: w + 1, {"e", "w"}, {})
    back = mx.load(str(tmp_path / "out.safetensors"))
    assert back["e"].shape == (0, 3) and mx.array_equal(back["w"], mx.full((2, 3), 2.0))


def _shard(path, tensors):
    mx.save_safetensors(str(path), tensors)
    return path


def test_shards_rewritten_together_copy_the_others_while_the_last_is_merged(tmp_path):
    """The copier walks every shard while the changed tensor (in the last shard, as the adapted layers are)
    is merged: every shard is complete, each untouched tensor byte for byte, `done` told of each in order."""
    first = {f"t{i}": mx.random.normal((64, 32), key=mx.random.key(i)).astype(mx.bfloat16) for i in range(5)}
    last = {"a": mx.ones((40, 8), dtype=mx.float16), "w": mx.arange(48, dtype=mx.float32).reshape(6, 8)}
    jobs = [
        shards.Rewrite(
            _shard(tmp_path / f"in{i}.safetensors", t),
            tmp_path / f"out{i}.safetensors",
            {"w"} if i else set(),
            {"format": "mlx"},
        )
        for i, t in enumerate([first, last])
    ]
    told: list[int] = []
    sizes = shards.rewrite_all(jobs, lambda name, rows, w: w - 1, told.append)
    assert told == [0, 1] and sizes == [sum(v.nbytes for v in t.values()) for t in (first, last)]
    back = [mx.load(str(tmp_path / f"out{i}.safetensors")) for i in range(2)]
    assert all(mx.array_equal(back[0][k], v) for k, v in first.items())
    assert mx.array_equal(back[1]["a"], last["a"]) and mx.array_equal(back[1]["w"], last["w"] - 1)


def test_a_failing_merge_stops_the_rewrite_and_says_why(tmp_path):
    jobs = [
        shards.Rewrite(
            _shard(tmp_path / f"in{i}.safetensors", {"w": mx.ones((8, 8))}), tmp_path / f"out{i}.safetensors", {"w"}, {}
        )
        for i in range(3)
    ]

    def change(name, rows, w):
        raise ValueError(f"{name}: cannot merge")

    with pytest.raises(ValueError, match="w: cannot merge"):
        shards.rewrite_all(jobs, change)


def test_short_reads_and_writes_are_resumed_at_the_right_byte(tmp_path, monkeypatch):
    """The kernel may move fewer bytes than asked: a rewritten tensor (a 2-D array) is still written whole,
    from the byte where the short write stopped, and a read resumes likewise, with or without preadv."""
    data = np.arange(3 * 1000, dtype=np.uint16).reshape(3, 1000)
    real_pwrite, real_preadv = os.pwrite, os.preadv
    monkeypatch.setattr(os, "pwrite", lambda fd, view, offset: real_pwrite(fd, bytes(view)[:333], offset))
    with open(tmp_path / "out", "wb") as f:
        shards._write_at(f.fileno(), data, 5)
    assert (tmp_path / "out").read_bytes() == b"\0" * 5 + data.tobytes()
    monkeypatch.setattr(os, "preadv", lambda fd, views, offset: real_preadv(fd, [views[0][:100]], offset))
    into = memoryview(bytearray(data.nbytes))
    with open(tmp_path / "out", "rb") as f:
        assert shards._read_at(f.fileno(), into, 5) == data.nbytes and bytes(into) == data.tobytes()
        monkeypatch.delattr(os, "preadv")
        monkeypatch.setattr(shards, "CHUNK", 77)
        into = memoryview(bytearray(data.nbytes + 10))
        assert shards._read_at(f.fileno(), into, 5) == data.nbytes, "the file ends: fewer bytes, no error"
