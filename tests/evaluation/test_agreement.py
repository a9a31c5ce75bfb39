"""A judge against a person: the agreement statistics on fixed data, checked against scipy, scikit-learn
and the textbook formulas; the calibration stage's graph and its blocking rule."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pytest
import tomli
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from anvil.evaluation.agreement import agreement, shortfalls
from anvil.executor import new_record
from anvil.planning.plan import Act, make_plan
from anvil.planning.record import Outcome
from anvil.recipe.calibration import CalibrationItem
from anvil.recipe.models import Recipe
from anvil.recipe.suite import Suite, SuiteTest
from anvil.stages.registry import build_graph

PERSON = [0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0, 2.5, 3.5]
JUDGE = [0, 1.5, 2, 3, 4, 5, 4.5, 4, 3, 2, 1, 0.5, 2, 3]


def quadratic_kappa(a: list[int], b: list[int], k: int = 6) -> float:
    """Cohen's weighted kappa by its definition: 1 - sum(w * observed) / sum(w * expected)."""
    observed = np.zeros((k, k))
    for x, y in zip(a, b, strict=True):
        observed[x, y] += 1
    expected = np.outer(observed.sum(1), observed.sum(0)) / len(a)
    weights = np.array([[(i - j) ** 2 for j in range(k)] for i in range(k)])
    return 1 - (weights * observed).sum() / (weights * expected).sum()


def test_each_figure_matches_the_reference_implementation():
    found = agreement(PERSON, JUDGE, alpha=0.05)
    assert found["n"] == 14
    assert found["spearman"]["value"] == pytest.approx(stats.spearmanr(PERSON, JUDGE).statistic)
    rounded = ([math.floor(x + 0.5) for x in PERSON], [math.floor(x + 0.5) for x in JUDGE])  # a half up
    assert found["kappa"]["value"] == pytest.approx(cohen_kappa_score(*rounded, weights="quadratic"))
    assert found["kappa"]["value"] == pytest.approx(quadratic_kappa(*rounded))
    errors = np.array(JUDGE) - np.array(PERSON)
    assert found["mae"]["value"] == pytest.approx(np.abs(errors).mean())
    assert found["bias"]["value"] == pytest.approx(errors.mean())


def test_the_intervals_are_the_textbook_ones():
    found = agreement(PERSON, JUDGE, alpha=0.05)
    n, errors = len(PERSON), np.array(JUDGE) - np.array(PERSON)
    half = stats.t.ppf(0.975, n - 1) * errors.std(ddof=1) / math.sqrt(n)
    assert (found["bias"]["ci_low"], found["bias"]["ci_high"]) == pytest.approx(
        (errors.mean() - half, errors.mean() + half)
    )
    r = found["spearman"]["value"]
    z, se = math.atanh(r), math.sqrt((1 + r * r / 2) / (n - 3))  # Bonett and Wright
    assert found["spearman"]["ci_low"] == pytest.approx(math.tanh(z - 1.959964 * se), abs=1e-5)
    kappa = found["kappa"]
    assert kappa["ci_low"] < kappa["value"] <= kappa["ci_high"] <= 1.0
    wider = agreement(PERSON, JUDGE, alpha=0.01)["kappa"]
    assert wider["ci_low"] < kappa["ci_low"], "a smaller alpha widens the interval"
    assert agreement(PERSON, JUDGE) == agreement(PERSON, JUDGE), "nothing is resampled"


def test_a_constant_or_shuffled_judge_collapses_and_fails_by_name():
    constant = agreement(PERSON, [4.0] * len(PERSON))
    assert constant["kappa"]["value"] is None and constant["spearman"]["value"] is None
    missed = shortfalls(constant, {"min_kappa": 0.6, "max_mae": 0.75})
    assert missed[0].startswith("quadratic-weighted kappa cannot be computed") and "(min_kappa = 0.6)" in missed[0]
    assert missed[1].startswith("mean absolute error") and "(max_mae)" in missed[1]
    shuffled = agreement(PERSON, list(reversed(JUDGE)))
    assert shuffled["kappa"]["value"] < 0.6 and shortfalls(shuffled, {"min_kappa": 0.6})
    assert shortfalls(agreement(PERSON, PERSON), {"min_kappa": 0.6, "max_mae": 0.1, "max_abs_bias": 0.1}) == []


RECIPE = """
[project]
name = "c"
[models.base]
source = "synthetic:tiny"
[eval]
compare = ["base"]
suites = ["suite"]
judge_agreement = { min_kappa = 0.6 }
[[gates]]
model = "base"
metric = "suite.composite"
min = 1.0
"""


def test_a_failed_calibration_blocks_the_evaluations_and_gates_of_its_suite():
    test = SuiteTest(id="greet", category="voice", turns=["Hi"], rubric="Greets.")
    rows = [CalibrationItem(test="greet", answer="Hello", score=5), CalibrationItem(test="greet", answer="x", score=0)]
    graph = build_graph(Recipe.model_validate(tomli.loads(RECIPE)), {"suite": Suite([test], rows)})
    assert graph.nodes["base.eval"].needs["calibration:suite"] == "suite.calibration"
    plan = make_plan(graph, {}, {})
    prints = {a.stage: a.fingerprint for a in plan.actions}
    now = datetime.now(timezone.utc)
    records = {
        sid: new_record(
            graph.nodes[sid],
            prints[sid],
            prints,
            {},
            now,
            1.0,
            {},
            Outcome.FAILED if sid == "suite.calibration" else Outcome.OK,
        )
        for sid in ("base.source", "base.transcripts", "suite.calibration")
    }
    acts = {a.stage: (a.act, a.reasons) for a in make_plan(graph, records, {}).actions}
    assert acts["base.eval"] == (Act.BLOCKED, ("blocked: suite.calibration failed",))
    assert acts["base.gate"][0] is Act.BLOCKED
