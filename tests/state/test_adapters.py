"""An adapter made elsewhere, checked against the round the recipe declares and the parent it must fit,
from the files' headers: each difference named by field, with the recipe's value and the file's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from anvil.backends.lora import adapter_config
from anvil.errors import AnvilError
from anvil.recipe.models import Lora
from anvil.state import adapters

LAYERS, HIDDEN, OUT = 4, 32, 48


def parent(folder):
    folder.mkdir()
    weights = {
        f"language_model.model.layers.{i}.self_attn.q_proj.weight": np.zeros((OUT, HIDDEN), np.float32)
        for i in range(LAYERS)
    }
    weights["vision_tower.patch.weight"] = np.zeros((8, 8), np.float32)
    save_file(weights, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "gemma4"}))
    return folder


def adapter(folder, rank=4, layers=(2, 3), config=None, module="self_attn.q_proj", out=OUT):
    folder.mkdir()
    tensors = {}
    for i in layers:
        name = f"language_model.model.layers.{i}.{module}"
        tensors[f"{name}.lora_a"] = np.zeros((HIDDEN, rank), np.float32)
        tensors[f"{name}.lora_b"] = np.zeros((rank, out), np.float32)
    save_file(tensors, str(folder / "adapters.safetensors"))
    lora = Lora(rank=rank, last_layers=len(layers), targets=["q_proj"])
    (folder / "adapter_config.json").write_text(json.dumps(config or adapter_config(lora, "elsewhere")))
    return folder


NAMES = {"lora_parameters.rank": "models.v1.lora.rank", "num_layers": "models.v1.lora.last_layers"}


def check(folder, base, lora: Lora) -> list[str]:
    config, shapes = adapters.read(folder)
    expected = adapter_config(lora, "")
    keys = expected["lora_parameters"]["keys"]
    return adapters.mismatches(config, expected, NAMES) + adapters.fit(shapes, base, config, keys, "the targets")


def test_an_adapter_of_the_round_fits(tmp_path):
    base = parent(tmp_path / "parent")
    assert check(adapter(tmp_path / "a"), base, Lora(rank=4, last_layers=2, targets=["q_proj"])) == []


def test_each_setting_that_differs_is_named_with_both_values(tmp_path):
    base = parent(tmp_path / "parent")
    found = check(adapter(tmp_path / "a"), base, Lora(rank=8, scale=20.0, last_layers=2, targets=["q_proj", "v_proj"]))
    assert found[0] == "lora_parameters.rank: the recipe's models.v1.lora.rank is 8, the file's is 4"
    assert "lora_parameters.scale: the recipe's lora_parameters.scale is 20.0, the file's is 10.0" in found
    assert any(line.startswith("lora_parameters.keys:") and "self_attn.v_proj" in line for line in found)


def test_tensors_that_do_not_fit_the_parent_are_refused(tmp_path):
    base = parent(tmp_path / "parent")
    lora = Lora(rank=4, last_layers=2, targets=["q_proj"])
    assert "do not fit the parent's weight [48, 32]" in check(adapter(tmp_path / "a", out=64), base, lora)[0]
    missing = check(adapter(tmp_path / "b", module="self_attn.k_proj"), base, lora)
    assert "no such weight in the parent" in missing[0], "another architecture"
    early = check(adapter(tmp_path / "c", layers=(0, 1)), base, lora)
    assert early == ["adapted layers 0..1 are not the last 2 of the parent's 4"]


def test_a_folder_that_is_not_an_adapter_says_what_is_missing(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "adapter_config.json").write_text("{}")
    with pytest.raises(AnvilError, match=r"not an adapter folder \(adapters.safetensors missing"):
        adapters.read(tmp_path / "x")
    (tmp_path / "x" / "adapters.safetensors").write_bytes(b"\x01")
    with pytest.raises(AnvilError, match="adapters.safetensors: not a safetensors file"):
        adapters.read(tmp_path / "x")
