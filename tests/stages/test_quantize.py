"""Quantized nodes without running MLX: the recipe's rules, the planned graph, the size estimate and the
non-inferiority verdict."""

from __future__ import annotations

import pytest
import tomli

from anvil.estimates.arithmetic import Shape
from anvil.estimates.sizing import quantized_shape
from anvil.recipe.models import Recipe
from anvil.recipe.quantization import Quantize
from anvil.stages.quantize import verdict
from anvil.stages.registry import build_graph
from tests.conftest import LINEAGE

QUANTIZED = LINEAGE + '\n[models.v2q4]\nparent = "v2"\nquantize = { bits = 4, group_size = 64 }\n'


def test_a_quantized_node_is_built_from_its_parent_weights_and_never_trained():
    graph = build_graph(Recipe.model_validate(tomli.loads(QUANTIZED)))
    node = graph.nodes["v2q4.quantize"]
    assert node.needs == {"parent": "v2.fuse"} and node.detail == "4-bit affine (group 64)"
    assert "v2q4.train" not in graph.nodes and "v2q4.fuse" not in graph.nodes


def test_the_margin_judges_and_builds_nothing():
    """Changing the non-inferiority margin does not quantize again: it is not in the stage's fingerprint."""
    one = build_graph(Recipe.model_validate(tomli.loads(QUANTIZED))).nodes["v2q4.quantize"]
    other = build_graph(
        Recipe.model_validate(tomli.loads(QUANTIZED.replace("group_size = 64 }", "group_size = 64, margin = 0.5 }")))
    ).nodes["v2q4.quantize"]
    assert one.settings == other.settings


@pytest.mark.parametrize(
    "spec, per_weight",
    [
        (Quantize(bits=4, group_size=64), 4 + 32 / 64),
        (Quantize(bits=8, group_size=32), 8 + 32 / 32),
        (Quantize(mode="mxfp4", bits=4, group_size=32), 4 + 8 / 32),
    ],
)
def test_the_size_estimate_is_bits_plus_scales_of_the_language_weights_towers_kept(spec, per_weight):
    bf16 = Shape(
        weight_bytes=2.2e9,
        parameters=1.1e9,
        hidden=1,
        intermediate=1,
        layers=1,
        heads=1,
        kv_heads=1,
        head_dim=1,
        vocab=1,
        text_weight_bytes=2.0e9,
    )
    shape = quantized_shape(bf16, spec)
    assert shape.text_weight_bytes == pytest.approx(2.0e9 * per_weight / 16)
    assert shape.weight_bytes - shape.text_weight_bytes == pytest.approx(0.2e9)


def composite(low: float, high: float, delta: float = 0.0) -> dict:
    return {"suite": "s", "delta": delta, "ci_low": low, "ci_high": high}


def test_the_verdict_reads_the_intervals_against_the_margin():
    assert verdict([composite(-0.2, 0.3)], [], 0.25)["verdict"] == "non-inferior"
    assert verdict([composite(-0.4, 0.3)], [], 0.25)["verdict"] == "undecided"
    assert verdict([composite(-0.9, -0.3, -0.6)], [], 0.25)["verdict"] == "inferior"
    worse = {"benchmark": "gsm8k_cot", "delta": -0.1, "significant": True}
    judged = verdict([composite(-0.1, 0.1)], [worse], 0.25)
    assert judged["verdict"] == "inferior" and "gsm8k_cot significantly worse" in judged["why"]
    assert verdict([], [], 0.25)["verdict"] == "undecided"
