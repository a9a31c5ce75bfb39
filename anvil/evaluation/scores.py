"""Pure arithmetic on judged runs: per-test mean and spread, category means, the composite, deltas
against base and parent, and gates on any of them."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from anvil.evaluation import stats
from anvil.evaluation.results import BenchmarkScores, Comparison, Delta, ScoredTest, Significance, SuiteScores
from anvil.recipe.evaluation import Gate
from anvil.recipe.metrics import KNOWLEDGE, Metric, parse_metric
from anvil.recipe.suite import Scoring


def summarize(tests: list[Scoring], scores: dict[str, list[float]], high_variance: float) -> SuiteScores:
    """`scores`: run scores per test id (0-5). Means are weighted by each test's weight."""
    per_test = {}
    for test in tests:
        runs = scores[test.id]
        per_test[test.id] = ScoredTest(
            category=test.category,
            runs=runs,
            mean=round(statistics.fmean(runs), 3),
            std=round(statistics.pstdev(runs), 3) if len(runs) > 1 else 0.0,
            high_variance=len(runs) > 1 and max(runs) - min(runs) >= high_variance,
            gate=test.gate,
            weight=test.weight,
        )
    categories: dict[str, float] = {}
    for category in dict.fromkeys(t.category for t in tests):
        members = [t for t in tests if t.category == category]
        categories[category] = _weighted(members, per_test)
    return SuiteScores(tests=per_test, categories=categories, composite=_weighted(tests, per_test))


def _weighted(tests: list[Scoring], per_test: dict[str, ScoredTest]) -> float:
    total = sum(t.weight for t in tests)
    return round(sum(per_test[t.id].mean * t.weight for t in tests) / total, 3)


def deltas(mine: SuiteScores, other: SuiteScores | None, alpha: float = stats.ALPHA) -> Delta | None:
    """Differences against another model's summary of the same suite: composite, categories and tests.
    The composite and each category carry a paired test with the test as the unit and an interval at
    1 - alpha (`significance`; evaluation/stats.py) and `significant`, which is what a flag may claim:
    the composite's p < alpha, a category's after Holm's adjustment over the suite's categories (`p_holm`).
    A single test is only a delta (stats.PER_TEST says why)."""
    if other is None:
        return None
    shared = [t for t in mine.tests if t in other.tests]

    def over(tests: list[str]) -> dict[str, Any]:
        # each test's mean from its runs, not the mean rounded for display: rounding makes spread
        mean = [statistics.fmean(mine.tests[t].runs) for t in tests]
        theirs = [statistics.fmean(other.tests[t].runs) for t in tests]
        return stats.clustered(mean, theirs, [mine.tests[t].weight for t in tests], alpha).to_json()

    categories = [c for c in mine.categories if c in other.categories]
    composite = over(shared)
    composite["significant"] = stats.significant(composite["p_value"], alpha)
    by_category = {c: over([t for t in shared if mine.tests[t].category == c]) for c in categories}
    for c, p in stats.holm({c: v["p_value"] for c, v in by_category.items()}).items():
        by_category[c] |= {"p_holm": p, "significant": stats.significant(p, alpha)}
    return Delta(
        composite=round(mine.composite - other.composite, 3),
        categories={c: round(mine.categories[c] - other.categories[c], 3) for c in categories},
        tests={t: round(mine.tests[t].mean - other.tests[t].mean, 3) for t in shared},
        significance=Significance(
            alpha=alpha,
            composite=Comparison(**composite),
            categories={c: Comparison(**v) for c, v in by_category.items()},
            tests=stats.PER_TEST,
        ),
    )


def metric(
    suites: Mapping[str, SuiteScores], path: str, knowledge: Mapping[str, BenchmarkScores] | None = None
) -> float | None:
    """A metric's value (its grammar: recipe/metrics.py), or None when the results have no such metric."""
    m = parse_metric(path)
    if m is None:
        return None
    if m.source == KNOWLEDGE:
        benchmark = (knowledge or {}).get(m.name)
        if benchmark is None:
            return None
        if m.kind == "score":
            return benchmark.score
        paired = benchmark.delta(m.kind.removeprefix("delta_vs_"))
        return None if paired is None else getattr(paired, m.part or "delta", None)
    summary = suites.get(m.source)
    if summary is None:
        return None
    if m.kind == "composite":
        return summary.composite
    if m.kind == "category":
        return summary.categories.get(m.name)
    if m.kind == "test":
        test = summary.tests.get(m.name)
        return None if test is None else test.mean
    delta = summary.delta(m.kind.removeprefix("delta_vs_"))
    if delta is None:
        return None
    if m.part:
        found = _tested(delta, m.name)
        return None if found is None else getattr(found, m.part, None)
    return delta.composite if not m.name else delta.categories.get(m.name)


def _tested(delta: Delta, category: str | None) -> Comparison | None:
    """The paired test behind a delta: the composite's, or a category's."""
    return delta.significance.composite if not category else delta.significance.categories.get(category)


def _why_missing(suites: Mapping[str, SuiteScores], path: str) -> str | None:
    """Why a suite delta's p-value or interval is absent (too few tests, no spread), if that is why."""
    m = parse_metric(path)
    if m is None or m.source == KNOWLEDGE or not m.part or (summary := suites.get(m.source)) is None:
        return None
    delta = summary.delta(m.kind.removeprefix("delta_vs_"))
    found = _tested(delta, m.name) if delta else None
    return found.reason if found else None


def check_gates(
    suites: Mapping[str, SuiteScores], gates: list[Gate], knowledge: Mapping[str, BenchmarkScores] | None = None
) -> list[dict[str, Any]]:
    """Every recipe gate and every per-test gate of the suites, with its value and whether it passed."""
    results = []
    for gate in gates:
        value = metric(suites, gate.metric, knowledge)
        passed = (
            value is not None and (gate.min is None or value >= gate.min) and (gate.max is None or value <= gate.max)
        )
        results.append(
            {"metric": gate.metric, "value": value, "min": gate.min, "max": gate.max, "passed": passed}
            | ({"reason": why} if value is None and (why := _why_missing(suites, gate.metric)) else {})
        )
    for suite, summary in suites.items():
        for test_id, test in summary.tests.items():
            if test.gate is not None:
                results.append(
                    {
                        "metric": str(Metric(suite, "test", test_id)),
                        "value": test.mean,
                        "min": test.gate,
                        "max": None,
                        "passed": test.mean >= test.gate,
                    }
                )
    return results
