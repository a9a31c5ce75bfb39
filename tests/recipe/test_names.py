"""The grammars written once: stage ids and gate metrics, each with one constructor and one parser that
invert each other."""

from __future__ import annotations

import pytest

from anvil.planning.graph import parse_stage_id, stage_id
from anvil.recipe.load import load_recipe
from anvil.recipe.metrics import Metric, gate_metrics, parse_metric
from anvil.stages.registry import build_graph
from tests.conftest import REPO


@pytest.mark.parametrize("recipe", [REPO / "anvil.toml", *sorted((REPO / "recipes").glob("*.toml"))])
def test_every_stage_id_of_the_shipped_recipes_parses_back(recipe):
    loaded = load_recipe(recipe)
    graph = build_graph(loaded.recipe, loaded.suites)
    for sid, node in graph.nodes.items():
        kind, owner = parse_stage_id(sid)
        assert kind == node.kind and stage_id(kind, owner) == sid
        assert owner == node.model or kind in ("dataset", "serve", "serving", "report", "calibration")


@pytest.mark.parametrize("recipe", [REPO / "anvil.toml", *sorted((REPO / "recipes").glob("*.toml"))])
def test_every_gate_metric_of_the_shipped_recipes_round_trips(recipe):
    loaded = load_recipe(recipe)
    seen = 0
    for model in loaded.recipe.models:
        for path in gate_metrics(loaded.recipe, loaded.suites, model):
            parsed = parse_metric(path)
            assert parsed is not None and str(parsed) == path, path
            seen += 1
    assert seen or not loaded.recipe.eval


@pytest.mark.parametrize(
    "metric",
    [
        Metric("behavioral", "composite"),
        Metric("behavioral", "category", "tool_use"),
        Metric("behavioral", "test", "tool_multi_step"),
        Metric("behavioral", "delta_vs_base"),
        Metric("behavioral", "delta_vs_parent", "voice", "ci_low"),
        Metric("behavioral", "delta_vs_base", "", "p_value"),
        Metric("knowledge", "score", "gsm8k_cot"),
        Metric("knowledge", "delta_vs_parent", "mmlu_pro_0shot", "ci_high"),
    ],
)
def test_a_metric_written_is_read_back(metric):
    assert parse_metric(str(metric)) == metric


@pytest.mark.parametrize(
    "path",
    [
        "behavioral",
        "behavioral.composite.x",
        "behavioral.category",
        "behavioral.test.a.b",
        "knowledge.gsm8k_cot",
        "knowledge.gsm8k_cot.score.p_value",
        "behavioral.nonsense",
        ".composite",
        "behavioral..composite",
        "knowledge.x.delta_vs_base.y",
    ],
)
def test_what_is_not_a_metric_parses_to_none(path):
    assert parse_metric(path) is None
