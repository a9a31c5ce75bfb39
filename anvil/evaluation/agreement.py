"""How well a judge agrees with a person on the same answers (a suite's calibration set), each figure
with a 1 - alpha interval, deterministic like the rest of Anvil's statistics (nothing resampled):

- Spearman's rank correlation (scipy), its interval by Fisher's z with Bonett and Wright's standard error
  for a rank correlation, sqrt((1 + r^2 / 2) / (n - 3));
- Cohen's kappa with quadratic weights on the scores taken to whole points 0-5, a half up (scikit-learn),
  its interval from the jackknife's standard error (leave each answer out once) on a t reference;
- mean absolute error and bias (mean of judge - person), t intervals.

A judge that gives every answer one score has no rank correlation and no kappa: they are None, with the
reason, and a threshold on them is not met."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

LABELS = list(range(6))
CONSTANT = "the judge (or the person) gave every answer the same score"


def figure(value: float | None, low: float | None = None, high: float | None = None, reason: str | None = None):
    return {"value": value, "ci_low": low, "ci_high": high, "reason": reason}


def spearman(person: Sequence[float], judge: Sequence[float], alpha: float) -> dict[str, Any]:
    from scipy import stats  # heavy: loaded when a test is computed, not when anvil starts

    if len(set(person)) < 2 or len(set(judge)) < 2:
        return figure(None, reason=CONSTANT)
    r = float(stats.spearmanr(person, judge).statistic)
    n = len(person)
    if n <= 3 or abs(r) >= 1:
        return figure(
            r,
            r if abs(r) >= 1 else None,
            r if abs(r) >= 1 else None,
            None if abs(r) >= 1 else "fewer than 4 answers: no interval",
        )
    half = stats.norm.ppf(1 - alpha / 2) * math.sqrt((1 + r * r / 2) / (n - 3))
    z = math.atanh(r)
    return figure(r, math.tanh(z - half), math.tanh(z + half))


def _kappa(person: Sequence[int], judge: Sequence[int]) -> float:
    import numpy as np
    from sklearn.metrics import cohen_kappa_score

    with np.errstate(divide="ignore", invalid="ignore"):
        return float(cohen_kappa_score(person, judge, labels=LABELS, weights="quadratic"))


def _whole(score: float) -> int:
    """A score on kappa's 0-5 categories: to the nearest whole point, a half up (2.5 -> 3, as people read
    it; Python's round would take it to the even 2)."""
    return math.floor(score + 0.5)


def kappa(person: Sequence[float], judge: Sequence[float], alpha: float) -> dict[str, Any]:
    import numpy as np
    from scipy import stats

    a, b = [_whole(x) for x in person], [_whole(x) for x in judge]
    if len(set(a)) < 2 or len(set(b)) < 2:
        return figure(None, reason=CONSTANT)
    k, n = _kappa(a, b), len(a)
    if n < 3:
        return figure(k, reason="fewer than 3 answers: no interval")
    left_out = np.array([_kappa(a[:i] + a[i + 1 :], b[:i] + b[i + 1 :]) for i in range(n)])
    left_out = left_out[np.isfinite(left_out)]
    se = math.sqrt((n - 1) / n * float(((left_out - left_out.mean()) ** 2).sum())) if left_out.size else 0.0
    half = stats.t.ppf(1 - alpha / 2, n - 1) * se
    return figure(k, max(k - half, -1.0), min(k + half, 1.0))


def _mean(values: np.ndarray, alpha: float, floor: float | None = None) -> dict[str, Any]:
    from scipy import stats

    mean, n = float(values.mean()), values.size
    if n < 2:
        return figure(mean, reason="one answer: no interval")
    half = stats.t.ppf(1 - alpha / 2, n - 1) * float(values.std(ddof=1)) / math.sqrt(n)
    low = mean - half if floor is None else max(mean - half, floor)
    return figure(mean, float(low), float(mean + half))


def agreement(person: Sequence[float], judge: Sequence[float], alpha: float = 0.05) -> dict[str, Any]:
    """Every figure of a judge against a person, on paired scores 0-5."""
    import numpy as np

    difference = np.asarray(judge, dtype=float) - np.asarray(person, dtype=float)
    return {
        "n": len(person),
        "spearman": spearman(person, judge, alpha),
        "kappa": kappa(person, judge, alpha),
        "mae": _mean(np.abs(difference), alpha, floor=0.0),
        "bias": _mean(difference, alpha),
        "alpha": alpha,
    }


def pairwise(labels: Sequence[str], scores: Sequence[Sequence[float]], alpha: float = 0.05) -> list[dict[str, Any]]:
    """A panel's judges against each other: each pair's agreement on the same answers (`scores`: one row
    per answer, a score per judge)."""
    columns = list(zip(*scores, strict=True)) if scores else [()] * len(labels)
    return [
        {"a": labels[i], "b": labels[j], **agreement(columns[i], columns[j], alpha)}
        for i in range(len(labels))
        for j in range(i + 1, len(labels))
    ]


def shortfalls(found: dict[str, Any], thresholds: dict[str, float | None]) -> list[str]:
    """Each threshold the figures do not meet, naming the figure: `min_kappa`, `min_spearman` (a missing
    figure does not meet its minimum), `max_mae`, `max_abs_bias`."""
    out = []
    for key, name, label in (
        ("min_kappa", "kappa", "quadratic-weighted kappa"),
        ("min_spearman", "spearman", "Spearman's rank correlation"),
    ):
        want, got = thresholds.get(key), found[name]
        if want is not None and got["value"] is None:
            out.append(f"{label} cannot be computed: {got['reason']} ({key} = {want:g})")
        elif want is not None and got["value"] < want:
            out.append(f"{label} {got['value']:.2f} < {want:g} ({key})")
    if (want := thresholds.get("max_mae")) is not None and found["mae"]["value"] > want:
        out.append(f"mean absolute error {found['mae']['value']:.2f} > {want:g} (max_mae)")
    if (want := thresholds.get("max_abs_bias")) is not None and abs(found["bias"]["value"]) > want:
        out.append(f"bias {found['bias']['value']:+.2f} beyond ±{want:g} (max_abs_bias)")
    return out
