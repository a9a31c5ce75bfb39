"""Pure arithmetic on judged runs: per-test mean and spread, category means, the composite, deltas
against base and parent, and gates on any of them."""

from __future__ import annotations

import statistics
from typing import Any

from anvil.recipe.evaluation import Gate
from anvil.recipe.suite import Scoring


def summarize(tests: list[Scoring], scores: dict[str, list[float]], high_variance: float) -> dict[str, Any]:
    """`scores`: run scores per test id (0-5). Means are weighted by each test's weight."""
    per_test = {}
    for test in tests:
        runs = scores[test.id]
        per_test[test.id] = {
            "category": test.category,
            "runs": runs,
            "mean": round(statistics.fmean(runs), 3),
            "std": round(statistics.pstdev(runs), 3) if len(runs) > 1 else 0.0,
            "high_variance": len(runs) > 1 and max(runs) - min(runs) >= high_variance,
            "gate": test.gate,
            "weight": test.weight,
        }
    categories: dict[str, float] = {}
    for category in dict.fromkeys(t.category for t in tests):
        members = [t for t in tests if t.category == category]
        categories[category] = _weighted(members, per_test)
    return {"tests": per_test, "categories": categories, "composite": _weighted(tests, per_test)}


def _weighted(tests: list[Scoring], per_test: dict[str, dict]) -> float:
    total = sum(t.weight for t in tests)
    return round(sum(per_test[t.id]["mean"] * t.weight for t in tests) / total, 3)


def deltas(mine: dict[str, Any], other: dict[str, Any] | None) -> dict[str, Any] | None:
    """Composite and per-category differences against another model's summary of the same suite."""
    if other is None:
        return None
    return {
        "composite": round(mine["composite"] - other["composite"], 3),
        "categories": {
            c: round(v - other["categories"][c], 3) for c, v in mine["categories"].items() if c in other["categories"]
        },  # fmt: skip
    }


def metric(suites: dict[str, dict[str, Any]], path: str) -> float | None:
    """`behavioral.composite`, `behavioral.category.tool_use`, `behavioral.test.tool_multi_step`,
    `behavioral.delta_vs_base`, `behavioral.delta_vs_parent`; None when the run has no such metric."""
    suite, _, rest = path.partition(".")
    summary = suites.get(suite)
    if summary is None:
        return None
    kind, _, name = rest.partition(".")
    if kind == "composite" and not name:
        return summary["composite"]
    if kind == "category":
        return summary["categories"].get(name)
    if kind == "test":
        test = summary["tests"].get(name)
        return None if test is None else test["mean"]
    if kind in ("delta_vs_base", "delta_vs_parent"):
        delta = summary.get(kind)
        return None if delta is None else (delta["composite"] if not name else delta["categories"].get(name))
    return None


def check_gates(suites: dict[str, dict[str, Any]], gates: list[Gate]) -> list[dict[str, Any]]:
    """Every recipe gate and every per-test gate of the suites, with its value and whether it passed."""
    results = []
    for gate in gates:
        value = metric(suites, gate.metric)
        passed = (
            value is not None and (gate.min is None or value >= gate.min) and (gate.max is None or value <= gate.max)
        )
        results.append({"metric": gate.metric, "value": value, "min": gate.min, "max": gate.max, "passed": passed})
    for suite, summary in suites.items():
        for test_id, test in summary["tests"].items():
            if test["gate"] is not None:
                results.append({"metric": f"{suite}.test.{test_id}", "value": test["mean"], "min": test["gate"],
                                "max": None, "passed": test["mean"] >= test["gate"]})  # fmt: skip
    return results
