"""The metrics a gate can name for a model, each with its range: the one place that knows their grammar
(`Metric` writes a path, `parse_metric` reads one; evaluation/scores.py reads their values). A gate naming
anything else is refused when the recipe is read, with a "did you mean".

    SUITE.composite                      0..5
    SUITE.category.CATEGORY              0..5
    SUITE.test.TEST                      0..5
    SUITE.delta_vs_base[.CATEGORY]       -5..5  (when the model's root is evaluated too)
    SUITE.delta_vs_parent[.CATEGORY]     -5..5  (when its parent is evaluated too)
    knowledge.BENCHMARK.score            0..1   (BENCHMARK: gsm8k_cot, mmlu_pro or mmlu_pro_0shot)
    knowledge.BENCHMARK.delta_vs_base    -1..1  (likewise)
    knowledge.BENCHMARK.delta_vs_parent  -1..1
    DELTA.p_value                        0..1   (any delta above: its paired test)
    DELTA.ci_low, DELTA.ci_high          as the delta (its 95% interval)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from anvil.knowledge.data import metric_name
from anvil.recipe.models import Recipe
from anvil.recipe.suite import Scoring

SCORE = (0.0, 5.0)
SCORE_DELTA = (-5.0, 5.0)
ACCURACY = (0.0, 1.0)
ACCURACY_DELTA = (-1.0, 1.0)
PROBABILITY = (0.0, 1.0)
KNOWLEDGE = "knowledge"
DELTAS = ("delta_vs_base", "delta_vs_parent")
SIGNIFICANCE = ("p_value", "ci_low", "ci_high")


@dataclass(frozen=True)
class Metric:
    """A metric's path, parsed: `source` is a suite's name or `knowledge`; `kind` is composite, category, test,
    a delta (DELTAS) or, of a benchmark, score; `name` the category or test (a suite's) or the benchmark
    (knowledge's); `part` one of SIGNIFICANCE, of a delta."""

    source: str
    kind: str
    name: str = ""
    part: str = ""

    def __str__(self) -> str:
        tail = f".{self.part}" if self.part else ""
        if self.source == KNOWLEDGE:
            return f"{KNOWLEDGE}.{self.name}.{self.kind}{tail}"
        return f"{self.source}.{self.kind}{'.' + self.name if self.name else ''}{tail}"


def parse_metric(path: str) -> Metric | None:
    """The parts of a metric's path, or None when it does not follow the grammar above (names hold no dot)."""
    source, *rest = path.split(".")
    part = rest.pop() if len(rest) > 1 and rest[-1] in SIGNIFICANCE else ""
    if source == KNOWLEDGE:
        if len(rest) != 2 or (rest[1] not in DELTAS and (rest[1] != "score" or part)):
            return None
        return Metric(KNOWLEDGE, rest[1], rest[0], part)
    if not rest or not all(rest) or not source:
        return None
    kind, names = rest[0], rest[1:]
    if kind == "composite" and not names and not part:
        return Metric(source, kind)
    if kind in ("category", "test") and len(names) == 1 and not part:
        return Metric(source, kind, names[0])
    if kind in DELTAS and len(names) <= 1:
        return Metric(source, kind, names[0] if names else "", part)
    return None


def comparisons(recipe: Recipe, model: str) -> list[str]:
    """The deltas a model's results carry: against its root and its parent, when they are evaluated too."""
    compared = recipe.eval.compare if recipe.eval else []
    against = dict(zip(DELTAS, (recipe.root_of(model), recipe.models[model].parent), strict=True))
    return [label for label, other in against.items() if other in compared and other != model]


def gate_metrics(recipe: Recipe, suites: Mapping[str, list[Scoring]], model: str) -> dict[str, tuple[float, float]]:
    """Every metric a gate on `model` can name, with its range."""
    out: dict[str, tuple[float, float]] = {}
    deltas = comparisons(recipe, model)
    for path, tests in suites.items():
        suite = Path(path).name
        categories = list(dict.fromkeys(t.category for t in tests))
        out[str(Metric(suite, "composite"))] = SCORE
        out |= {str(Metric(suite, "category", c)): SCORE for c in categories}
        out |= {str(Metric(suite, "test", t.id)): SCORE for t in tests}
        for label in deltas:
            out |= _with_significance(Metric(suite, label), SCORE_DELTA)
            for c in categories:
                out |= _with_significance(Metric(suite, label, c), SCORE_DELTA)
    for spec in recipe.eval.knowledge if recipe.eval else []:
        name = metric_name(spec)
        out[str(Metric(KNOWLEDGE, "score", name))] = ACCURACY
        for label in deltas:
            out |= _with_significance(Metric(KNOWLEDGE, label, name), ACCURACY_DELTA)
    return out


def _with_significance(delta: Metric, bounds: tuple[float, float]) -> dict[str, tuple[float, float]]:
    """A delta, its p-value and the ends of its 95% interval."""
    parts = {"": bounds, "p_value": PROBABILITY, "ci_low": bounds, "ci_high": bounds}
    return {str(Metric(delta.source, delta.kind, delta.name, part)): range_ for part, range_ in parts.items()}
