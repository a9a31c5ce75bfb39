"""A knowledge benchmark's items as graded, whichever path ran them (an Anvil protocol or an lm-eval task),
and what they score: the share correct per filter with lm-eval's standard error, sub-scores by group, and
the delta against another model's run of the same items, paired item by item (McNemar)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anvil.evaluation import stats
from anvil.evaluation.results import BenchmarkScores, PairedItems
from anvil.recipe.evaluation import Knowledge


@dataclass
class Graded:
    """A benchmark's items graded, whichever path ran it."""

    title: str
    headline: str  # the filter whose score is the benchmark's
    filters: list[str]
    items: list[dict[str, Any]]  # {key, messages, response, extracted, correct} by filter
    groups: list[str] | None = None  # each item's group, for sub-scores (MMLU-Pro's subjects)
    task: str | None = None  # the lm-eval task that graded it


def headline_first(filters: list[str], chosen: str | None) -> list[str]:
    """A benchmark's filters with the recipe's headline first (without one, the protocol's or task's own)."""
    return [chosen] + [f for f in filters if f != chosen] if chosen else filters


def scores_of(found: Graded, spec: Knowledge) -> dict[str, Any]:
    """A benchmark's scores (BenchmarkScores' fields): the headline filter's, every filter's, and each group's."""
    scores = {f: accuracy([g["correct"][f] for g in found.items]) for f in found.filters}
    summary: dict[str, Any] = {
        "title": found.title,
        "n": len(found.items),
        "filter": found.headline,
        "chat": spec.chat,
        "scores": {f: a["score"] for f, a in scores.items()},
        "stderrs": {f: a["stderr"] for f, a in scores.items()},
        "score": scores[found.headline]["score"],
        "stderr": scores[found.headline]["stderr"],
    }
    if found.task:
        summary["lm_eval_task"] = found.task
    if spec.overlaps_training:
        summary["overlaps_training"] = True
    if found.groups:  # lm-eval's sub-scores (MMLU-Pro's subjects), each with its own standard error
        by: dict[str, list[bool]] = {}
        for group, g in zip(found.groups, found.items, strict=True):
            by.setdefault(group, []).append(g["correct"][found.headline])
        summary["groups"] = {group: accuracy(correct) for group, correct in sorted(by.items())}
    return summary


def paired(found: Graded, other: BenchmarkScores | None, alpha: float) -> PairedItems | None:
    """The delta vs another model's run of the same benchmark, paired item by item (McNemar); None when the
    two did not ask the same items."""
    theirs = {g["key"]: g["correct"][found.headline] for g in (other.items if other else [])}
    if other is None or len(theirs) != len(found.items) or not all(g["key"] in theirs for g in found.items):
        return None
    mine = [g["correct"][found.headline] for g in found.items]
    compared = stats.mcnemar(mine, [theirs[g["key"]] for g in found.items], alpha).to_json()
    significant = stats.significant(compared["p_value"], alpha)
    return PairedItems(**compared, alpha=alpha, significant=significant, score=other.score)


def accuracy(correct: list[bool]) -> dict[str, Any]:
    """The share correct and its standard error as lm-eval reports it (the sample's, over n - 1)."""
    n, score = len(correct), sum(correct) / len(correct)
    return {"n": n, "score": score, "stderr": (score * (1 - score) / (n - 1)) ** 0.5 if n > 1 else None}
