"""The fuse on a checkpoint made here: merged as mlx-lm's LoRA computes, checked, and an adapter that does not
fit refused before anything is written."""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest

from anvil.backends import fuse
from anvil.errors import AnvilError

Q = "language_model.model.layers.{}.self_attn.q_proj"


def _checkpoint(folder, layers=2):
    folder.mkdir()
    tensors = {
        f"{Q.format(i)}.weight": mx.random.normal((16, 8), key=mx.random.key(i)).astype(mx.bfloat16)
        for i in range(layers)
    }
    tensors["vision_tower.patch.weight"] = mx.ones((4, 4), dtype=mx.bfloat16)
    mx.save_safetensors(str(folder / "model.safetensors"), tensors)
    (folder / "config.json").write_text(json.dumps({"model_type": "gemma4"}))
    return tensors


def _adapter(folder, layer):
    folder.mkdir()
    a, b = mx.random.normal((8, 4), key=mx.random.key(7)), mx.random.normal((4, 16), key=mx.random.key(8))
    mx.save_safetensors(
        str(folder / "adapters.safetensors"), {f"{Q.format(layer)}.lora_a": a, f"{Q.format(layer)}.lora_b": b}
    )
    (folder / "adapter_config.json").write_text(
        json.dumps({"fine_tune_type": "lora", "lora_parameters": {"scale": 2.0}})
    )
    return a, b


def test_the_adapted_projection_is_merged_and_every_other_tensor_kept(tmp_path):
    tensors = _checkpoint(tmp_path / "parent")
    a, b = _adapter(tmp_path / "adapter", 1)
    (tmp_path / "out").mkdir()
    metrics = fuse.fuse(tmp_path / "parent", tmp_path / "adapter", tmp_path / "out")
    back = mx.load(str(tmp_path / "out" / "model.safetensors"))
    expected = tensors[f"{Q.format(1)}.weight"].astype(mx.float32) + 2.0 * (a @ b).T
    assert metrics["merged_modules"] == 1 and metrics["max_projection_diff"] < 1e-2
    assert np.allclose(np.array(back[f"{Q.format(1)}.weight"].astype(mx.float32)), np.array(expected), atol=0.05)
    for name in (f"{Q.format(0)}.weight", "vision_tower.patch.weight"):
        assert mx.array_equal(back[name], tensors[name])


def test_an_adapter_for_modules_the_checkpoint_lacks_is_refused_before_anything_is_written(tmp_path):
    _checkpoint(tmp_path / "parent")
    _adapter(tmp_path / "adapter", 5)
    (tmp_path / "out").mkdir()
    with pytest.raises(AnvilError, match="adapter modules not found"):
        fuse.fuse(tmp_path / "parent", tmp_path / "adapter", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
