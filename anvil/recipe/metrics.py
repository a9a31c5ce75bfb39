"""The metrics a gate can name for a model, each with its range: the one place that knows their grammar
(evaluation/scores.py reads their values). A gate naming anything else is refused when the recipe is
read, with a "did you mean".

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
from pathlib import Path

from anvil.recipe.models import Recipe
from anvil.recipe.suite import Scoring

SCORE = (0.0, 5.0)
SCORE_DELTA = (-5.0, 5.0)
ACCURACY = (0.0, 1.0)
ACCURACY_DELTA = (-1.0, 1.0)
PROBABILITY = (0.0, 1.0)


def comparisons(recipe: Recipe, model: str) -> list[str]:
    """The deltas a model's results carry: against its root and its parent, when they are evaluated too."""
    compared = recipe.eval.compare if recipe.eval else []
    against = {"delta_vs_base": recipe.root_of(model), "delta_vs_parent": recipe.models[model].parent}
    return [label for label, other in against.items() if other in compared and other != model]


def gate_metrics(recipe: Recipe, suites: Mapping[str, list[Scoring]], model: str) -> dict[str, tuple[float, float]]:
    """Every metric a gate on `model` can name, with its range."""
    from anvil.knowledge.data import metric_name

    out: dict[str, tuple[float, float]] = {}
    deltas = comparisons(recipe, model)
    for path, tests in suites.items():
        suite = Path(path).name
        categories = list(dict.fromkeys(t.category for t in tests))
        out[f"{suite}.composite"] = SCORE
        out |= {f"{suite}.category.{c}": SCORE for c in categories}
        out |= {f"{suite}.test.{t.id}": SCORE for t in tests}
        for label in deltas:
            out |= _with_significance(f"{suite}.{label}", SCORE_DELTA)
            for c in categories:
                out |= _with_significance(f"{suite}.{label}.{c}", SCORE_DELTA)
    for spec in recipe.eval.knowledge if recipe.eval else []:
        name = metric_name(spec.benchmark, spec.data, spec.fewshot)
        out[f"knowledge.{name}.score"] = ACCURACY
        for label in deltas:
            out |= _with_significance(f"knowledge.{name}.{label}", ACCURACY_DELTA)
    return out


def _with_significance(delta: str, bounds: tuple[float, float]) -> dict[str, tuple[float, float]]:
    """A delta, its p-value and the ends of its 95% interval."""
    return {delta: bounds, f"{delta}.p_value": PROBABILITY, f"{delta}.ci_low": bounds, f"{delta}.ci_high": bounds}
