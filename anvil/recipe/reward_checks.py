"""What a reinforcement round's reward reads is there when the recipe is read: each field a term compares
with is in every row, and a judge term names a test of an evaluated suite whose calibration holds the judge
to a person (methods/rewards.py says what each term scores)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from anvil.methods.rewards import Grpo
from anvil.recipe.datasets import Dataset
from anvil.recipe.models import Recipe

# (key path, message) pairs; the loader turns them into located problems (recipe/checks.py's Finding).
Finding = tuple[tuple[str | int, ...], str]


def check_fields(recipe: Recipe, root: Path) -> Iterator[Finding]:
    for name, model in recipe.models.items():
        if isinstance(grpo := model.method_settings, Grpo) and model.dataset in recipe.datasets:
            yield from _fields_in(name, grpo, recipe.datasets[model.dataset], root)


def _fields_in(name: str, grpo: Grpo, dataset: Dataset, root: Path) -> Iterator[Finding]:
    """Every row a reward reads a field of has that field (the first row without it is named)."""
    for index, field in grpo.fields():
        for source in dataset.sources:
            missing = _first_without(root / source.path, field)
            if missing is not None:
                yield (
                    ("models", name, "grpo", "reward", index, "field"),
                    f"{field!r} is not in {source.path}:{missing} (expected every row the reward reads to have it)",
                )
                break


def check_judges(recipe: Recipe, suites: dict[str, list]) -> Iterator[Finding]:
    """A judge term names a test of a suite the recipe evaluates on, and the judge is held to a person there:
    the suite ships a calibration set and `judge_agreement` sets a threshold (a failed calibration then blocks
    the round, as it blocks the evaluations)."""
    by_name = {Path(path).name: tests for path, tests in suites.items()}
    for name, model in recipe.models.items():
        settings = model.method_settings
        for index, term in enumerate(settings.reward if isinstance(settings, Grpo) else []):
            if term.kind != "judge":
                continue
            where = ("models", name, "grpo", "reward", index, "test")
            if recipe.eval is None:
                yield where, "a judge reward needs [eval]: its judge, and the suite whose calibration vouches for it"
                continue
            tests = by_name.get(term.suite)
            if tests is None:
                known = ", ".join(Path(p).name for p in recipe.eval.suites) or "none"
                yield where, f"{term.suite!r} is not a suite of eval.suites (expected one of: {known})"
            elif term.test_id not in (ids := [t.id for t in tests]):
                yield where, f"{term.suite} has no test {term.test_id!r} (expected one of: {', '.join(ids)})"
            elif not getattr(tests, "calibration", None):
                yield (
                    where,
                    f"the judge is uncalibrated on {term.suite} (no {term.suite}/calibration/ answers a person "
                    "scored): a judge reward needs a judge checked against a person",
                )
            elif not recipe.eval.judge_agreement.model_dump(exclude_none=True):
                yield (
                    where,
                    "eval.judge_agreement sets no threshold, so no calibration can fail: a judge reward needs "
                    "the judge held to one (min_kappa, min_spearman, max_mae or max_abs_bias)",
                )


def _first_without(path: Path, field: str) -> int | None:
    """The line of the first JSON object in a JSONL file without `field` (its other problems are the rows'
    check's to report)."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError):
        return None
    for lineno, line in enumerate(lines, start=1):
        try:
            row = json.loads(line) if line.strip() else None
        except (ValueError, RecursionError):
            continue
        if isinstance(row, dict) and field not in row:
            return lineno
    return None
