"""Shards streamed a tensor at a time: the bytes the fuse writes are what MLX would write."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from anvil.backends import shards


def test_bfloat16_rounds_as_mlx_does_nan_and_infinity_included():
    x = np.concatenate([np.random.default_rng(0).standard_normal(50000).astype(np.float32) * 100,
                        np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 3.3895314e38], dtype=np.float32)])  # fmt: skip
    ours = np.frombuffer(shards.from_float32(x, "BF16"), dtype=np.uint16)
    theirs = np.array(mx.array(x).astype(mx.bfloat16).view(mx.uint16))
    finite = np.isfinite(x)
    assert (ours[finite] == theirs[finite]).all() and (ours[~finite & ~np.isnan(x)] == theirs[np.isinf(x)]).all()
    assert np.isnan(shards.to_float32(ours.tobytes(), "BF16", [len(x)])[np.isnan(x)]).all()


def test_a_rewrite_copies_every_other_tensor_byte_for_byte_and_mlx_reads_the_result(tmp_path):
    tensors = {"a.weight": mx.arange(12, dtype=mx.float32).reshape(3, 4).astype(mx.bfloat16),
               "b.bias": mx.ones((5,), dtype=mx.float16), "c.ids": mx.arange(7, dtype=mx.int32)}  # fmt: skip
    mx.save_safetensors(str(tmp_path / "in.safetensors"), tensors)
    written = shards.rewrite(tmp_path / "in.safetensors", tmp_path / "out.safetensors", lambda name, rows, w: w * 2,
                             {"a.weight"}, {"format": "mlx"})  # fmt: skip
    back = mx.load(str(tmp_path / "out.safetensors"))
    assert written == sum(v.nbytes for v in tensors.values())
    assert mx.array_equal(back["a.weight"], tensors["a.weight"] * 2) and back["a.weight"].dtype == mx.bfloat16
    assert mx.array_equal(back["b.bias"], tensors["b.bias"]) and mx.array_equal(back["c.ids"], tensors["c.ids"])
    rows = shards.read_tensor(tmp_path / "out.safetensors", *_info(tmp_path / "out.safetensors", "a.weight"), [2, 0])
    assert rows.tolist() == [[16.0, 18.0, 20.0, 22.0], [0.0, 2.0, 4.0, 6.0]]


def _info(path, name):
    head, start = shards.header(path)
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
