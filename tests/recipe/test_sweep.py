"""Sweeps without training: the expansion into named variants, the graph it makes (v2 means the winner),
and the selection rules on fixed results."""

from __future__ import annotations

import pytest
import tomli

from anvil.evaluation.scores import summarize
from anvil.recipe.models import Recipe
from anvil.recipe.suite import Scoring, SuiteTest
from anvil.recipe.sweep import expand, variant_name, variants
from anvil.stages.registry import build_graph
from anvil.stages.select import SelectConfig, choose
from tests.conftest import LINEAGE

SWEPT = (
    LINEAGE.replace(
        "learning_rate = 2e-05 }\n\n[datasets",
        'learning_rate = 2e-05 }\nmatrix = { "train.learning_rate" = [1e-5, 2e-5], "lora.rank" = [8, 16] }\n'
        'select = { metric = "s.composite" }\n\n[models.v3]\nparent = "v2"\nquantize = {}\n\n[datasets',
    )
    + '\n[eval]\ncompare = ["v1", "v2"]\nsuites = ["s"]\n'
)
SUITES = {"s": [SuiteTest(id="t", category="c", turns=["Hi"], rubric="Greets.")]}


def test_variants_are_named_by_what_they_set():
    assert variant_name("v2", {"train.learning_rate": 2e-5, "lora.rank": 16}) == "v2(lr=2e-5,rank=16)"
    assert (
        variant_name("v2", {"lora.scale": 0.5, "train.grad_checkpoint": True}) == "v2(scale=0.5,grad_checkpoint=true)"
    )


def test_a_matrix_expands_into_rounds_and_the_round_means_the_winner():
    assert SWEPT != LINEAGE
    recipe = expand(Recipe.model_validate(tomli.loads(SWEPT)))
    names = list(variants("v2", recipe.models["v2"]))
    assert names == ["v2(lr=1e-5,rank=8)", "v2(lr=1e-5,rank=16)", "v2(lr=2e-5,rank=8)", "v2(lr=2e-5,rank=16)"]
    assert recipe.models["v2(lr=2e-5,rank=8)"].train.learning_rate == 2e-5  # type: ignore[union-attr]
    assert recipe.models["v2(lr=2e-5,rank=8)"].lora.rank == 8  # type: ignore[union-attr]
    graph = build_graph(recipe, SUITES)
    assert {f"{v}.train" for v in names} <= set(graph.nodes) and "v2.train" not in graph.nodes
    assert set(graph.nodes["v2.select"].needs.values()) >= {f"{v}.fuse" for v in names}
    assert graph.nodes["v3.quantize"].needs == {"parent": "v2.select"}, "v2's child trains on the winner"
    kinds = ("train", "fuse", "transcripts", "eval", "gate")  # a full round, evaluated as v2 is
    assert graph.select("v2(lr=1e-5,rank=8)") == {f"v2(lr=1e-5,rank=8).{k}" for k in kinds}


def test_adding_a_value_adds_only_its_variants():
    two = build_graph(expand(Recipe.model_validate(tomli.loads(SWEPT))), SUITES)
    three = build_graph(
        expand(Recipe.model_validate(tomli.loads(SWEPT.replace("[1e-5, 2e-5]", "[1e-5, 2e-5, 3e-5]")))), SUITES
    )
    from anvil.planning.plan import make_plan

    files = {"data/domain.jsonl": "d", "data/a.jsonl": "a", "data/b.jsonl": "b"}
    before = {a.stage: a.fingerprint for a in make_plan(two, {}, files).actions}
    after = {a.stage: a.fingerprint for a in make_plan(three, {}, files).actions}
    changed = {s for s in after if s.endswith(".train") and before.get(s) != after[s]}
    assert changed == {"v2(lr=3e-5,rank=8).train", "v2(lr=3e-5,rank=16).train"}


TESTS = [Scoring(id=f"t{i}", category="c", rubric="r") for i in range(6)]


def results(means: list[float]) -> dict:
    scores = {t.id: [m, m, m] for t, m in zip(TESTS, means, strict=True)}
    return {"suites": {"s": summarize(TESTS, scores, 2.0)}}


def config(rule: str = "best", tie: str = "simplest") -> SelectConfig:
    return SelectConfig.model_validate(
        {
            "select": {"metric": "s.composite", "rule": rule, "tie": tie},
            "variants": {
                "v(lr=3e-5)": {"train.learning_rate": 3e-5},
                "v(lr=1e-5)": {"train.learning_rate": 1e-5},
                "v(lr=2e-5)": {"train.learning_rate": 2e-5},
            },
        }
    )


def test_best_takes_the_highest_and_breaks_ties_by_simplicity_or_order():
    found = {"v(lr=3e-5)": results([3] * 6), "v(lr=1e-5)": results([4] * 6), "v(lr=2e-5)": results([4] * 6)}
    chosen = choose(config(), found)
    assert chosen["winner"] == "v(lr=1e-5)" and "tied with 1; the simplest" in chosen["reason"]
    assert choose(config(tie="first"), found)["winner"] == "v(lr=1e-5)"
    found["v(lr=3e-5)"] = results([4] * 6)
    assert choose(config(tie="first"), found)["winner"] == "v(lr=3e-5)", "first as listed"


def test_simplest_within_noise_takes_the_simplest_not_significantly_worse():
    best = [4.0, 4.2, 3.8, 4.1, 3.9, 4.0]
    found = {
        "v(lr=3e-5)": results(best),
        "v(lr=2e-5)": results([b - 0.05 * (i % 2) for i, b in enumerate(best)]),
        "v(lr=1e-5)": results([b - 2.0 for b in best]),
    }
    chosen = choose(config("simplest_within_noise"), found)
    assert chosen["best"] == "v(lr=3e-5)" and chosen["winner"] == "v(lr=2e-5)", chosen
    assert "Holm-adjusted" in chosen["reason"]
    rows = {r["variant"]: r for r in chosen["variants"]}
    # two points lower on every test: no spread for a p-value, and no noise to be within
    assert rows["v(lr=1e-5)"]["p_holm"] is None and rows["v(lr=1e-5)"]["delta_vs_best"] == pytest.approx(-2.0)
