"""Paired comparisons of two models on the same items, each a delta with a p-value and a 95% interval:

- per-item correct/incorrect (knowledge benchmarks): McNemar's exact test on the discordant pairs, and
  the Agresti-Min interval for a difference of paired proportions;
- judge scores (suites): runs of one test are not independent, so the test is the unit. The delta is
  the weighted mean of per-test differences (the composite's delta); the p-value comes from a paired
  permutation test (each test's two means swapped, scipy's `permutation_test`), the interval from a
  bootstrap over tests (`scipy.stats.bootstrap`, percentile).

Resampling is seeded: the same results give the same p-values and intervals, so artifacts stay a
function of their inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 9999
SEED = 0


@dataclass(frozen=True)
class Comparison:
    delta: float
    p_value: float
    ci_low: float
    ci_high: float
    n: int

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def mcnemar(mine: Sequence[bool], theirs: Sequence[bool]) -> Comparison:
    """Accuracy of `mine` minus accuracy of `theirs`, item by item (the same items, in the same order)."""
    if len(mine) != len(theirs):
        raise ValueError(f"paired results differ in length: {len(mine)} and {len(theirs)}")
    n = len(mine)
    if n == 0:
        return Comparison(0.0, 1.0, 0.0, 0.0, 0)
    b = sum(m and not t for m, t in zip(mine, theirs, strict=True))  # only mine right
    c = sum(t and not m for m, t in zip(mine, theirs, strict=True))  # only theirs right
    p = stats.binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    # Agresti-Min: add 1/2 to each of the four cells, then the Wald interval of the paired difference.
    n2, b2, c2 = n + 2, b + 0.5, c + 0.5
    delta2 = (b2 - c2) / n2
    se = math.sqrt(max((b2 + c2) / n2 - delta2**2, 0.0) / n2)
    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    low, high = max(float(delta2 - z * se), -1.0), min(float(delta2 + z * se), 1.0)
    return Comparison((b - c) / n, float(p), low, high, n)


def clustered(mine: Sequence[float], theirs: Sequence[float], weights: Sequence[float] | None = None) -> Comparison:
    """Mean per-cluster score of `mine` minus `theirs` (a cluster: one test, its runs averaged), weighted."""
    if len(mine) != len(theirs):
        raise ValueError(f"paired results differ in length: {len(mine)} and {len(theirs)}")
    x, y = np.asarray(mine, float), np.asarray(theirs, float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    n = len(x)
    if n == 0:
        return Comparison(0.0, 1.0, 0.0, 0.0, 0)

    def delta(a, b, weight, axis=-1):
        return np.sum(weight * (a - b), axis=axis) / np.sum(weight, axis=axis)

    observed = float(delta(x, y, w))
    if n < 2 or np.all(x == y):
        return Comparison(observed, 1.0, observed, observed, n)
    # "samples": each test's two means may swap models; the weights stay with their test
    tested = stats.permutation_test((x, y), lambda a, b: delta(a, b, w), vectorized=False, permutation_type="samples",
                                    n_resamples=RESAMPLES, random_state=SEED)  # fmt: skip
    if np.all(x - y == (x - y)[0]):
        low = high = observed  # every cluster moved alike: nothing to resample
    else:
        boot = stats.bootstrap((x, y, w), delta, paired=True, vectorized=True, confidence_level=CONFIDENCE,
                               n_resamples=RESAMPLES, method="percentile", random_state=SEED)  # fmt: skip
        low, high = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    return Comparison(observed, min(float(tested.pvalue), 1.0), low, high, n)
