"""The gate table (apply's summary and the seed's GATE table of a failure): any metric name, 80 columns."""

from __future__ import annotations

from anvil.evaluation.results import BenchmarkScores, Delta, PairedItems, SuiteScores
from anvil.stages.gate import table

SHORT = {"metric": "tiny.composite", "value": 2.17, "min": 1.5, "max": None, "passed": True}
LONG = {"metric": "tiny.delta_vs_parent.category.conversational.ci_low", "value": None, "min": 0.0, "max": None}


def test_gates_line_up_and_a_long_name_is_never_cut():
    rows = table([SHORT, {**LONG, "passed": False}], marked=True, width=78)
    assert rows[0] == "✓ tiny.composite" + " " * 37 + "     2.17  needs >= 1.5"
    assert rows[1].startswith("✗ " + LONG["metric"]) and all(len(row) <= 80 for row in rows)
    assert len({row.index("needs") for row in rows if "needs" in row}) == 1, "one column of thresholds"


def test_a_name_too_long_for_the_column_goes_on_its_own_line():
    name = "tiny." + "x" * 60
    rows = table([{**SHORT, "metric": name}])
    assert rows == [name, "      2.17  needs >= 1.5"]


def _suite(delta: float, p: float | None, significant: bool) -> dict[str, SuiteScores]:
    composite = {"delta": delta, "p_value": p, "significant": significant}
    significance = {"alpha": 0.05, "composite": composite, "categories": {}, "tests": "deltas only"}
    against = {"composite": delta, "categories": {}, "tests": {}, "significance": significance}
    return {"tiny": SuiteScores(tests={}, categories={}, composite=2.0, delta_vs_parent=Delta.model_validate(against))}


TRAINED = {"held_out_reward_before": 0.1, "held_out_reward_after": 0.8, "held_out_p_value": 0.004}


def _benchmark(delta: float, p: float, significant: bool) -> dict[str, BenchmarkScores]:
    paired = PairedItems(delta=delta, p_value=p, significant=significant, alpha=0.05, score=0.5)
    shares = {"scores": {"exact": 0.5}, "stderrs": {"exact": 0.1}, "score": 0.5, "stderr": 0.1}
    scores = {"title": "Forging", "n": 30, "filter": "exact", "chat": "one_turn"} | shares
    return {"forging": BenchmarkScores.model_validate(scores | {"delta_vs_parent": paired})}


def test_a_reward_that_rose_alone_is_named():
    from anvil.stages.gate import reward_outran_evaluation

    benchmarks = _benchmark(-0.1, 0.5, False)
    why = reward_outran_evaluation(TRAINED, _suite(0.1, 0.6, False), benchmarks, 0.05)
    assert why is not None and "0.10 -> 0.80, p=0.004" in why
    assert "tiny composite +0.10 (p=0.6)" in why and "forging -10.00pp (p=0.5)" in why


def test_a_reward_that_rose_with_an_evaluation_or_did_not_rise_is_not():
    from anvil.stages.gate import reward_outran_evaluation

    assert reward_outran_evaluation(TRAINED, _suite(1.2, 0.01, True), {}, 0.05) is None
    risen = _benchmark(0.5, 0.001, True)
    assert reward_outran_evaluation(TRAINED, _suite(0.0, 0.9, False), risen, 0.05) is None
    flat = TRAINED | {"held_out_p_value": 0.3}
    assert reward_outran_evaluation(flat, _suite(0.0, 0.9, False), {}, 0.05) is None
    assert reward_outran_evaluation({}, {}, {}, 0.05) is None, "not a reinforcement round"


def test_a_guard_that_fails_is_one_gate_row_with_its_reason():
    row = {"metric": "reward guard", "value": 0.8, "min": None, "max": None, "passed": False, "reason": "why"}
    assert table([row]) == ["reward guard     0.80  needs an evaluation that rose with it (why)"]
