"""Paired comparisons of two models on the same items, each a delta with a p-value and an interval that
agree: the interval excludes 0 exactly when p < alpha, because both come from one test.

- per-item correct/incorrect (knowledge benchmarks): McNemar's exact test (the binomial test of the
  discordant pairs, as statsmodels' `mcnemar(exact=True)`), and the interval that inverts it: the
  Clopper-Pearson interval of the share of discordant pairs that favour `mine`, scaled by the number of
  discordant pairs (the bound of that count, at one standard error, that widens the interval: the count
  is random too; coverage checked by simulation in tests/evaluation/test_stats.py);
- judge scores (suites): runs of one test are not independent, so the test is the unit (Miller 2024,
  "Adding Error Bars to Evals"): the delta is the weighted mean of per-test differences (the composite's
  delta), its clustered standard error with a t reference on tests - 1 degrees of freedom gives both
  the p-value and the interval. Below MIN_TESTS tests there is neither, and the reason says so.

Nothing is resampled: the same results give the same figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

ALPHA = 0.05
ALIKE = "every test moved by the same amount: no spread to measure"
NO_SPREAD = 1e-9  # scores are multiples of a judge's step (0.5 at finest): a spread below this is rounding error
MIN_TESTS = 3  # 2 tests: a t interval on 1 degree of freedom, 25 standard errors wide, tells nothing
COUNT_LEVEL = 0.32  # the discordant count's own interval: one standard error either side
PER_TEST = (
    "a single test is compared over its seed-paired runs only as a delta: with 3 runs no paired test can reach p < 0.25"
)


@dataclass(frozen=True)
class Comparison:
    delta: float
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    reason: str | None = None  # why there is no p-value or interval

    def to_json(self) -> dict[str, Any]:
        """As computed: figures are rounded where they are shown, never where they are stored or tested."""
        return {k: v for k, v in asdict(self).items() if not (k == "reason" and v is None)}


def _clopper_pearson(k, n, alpha: float):
    """Two-sided exact interval of a binomial share, elementwise; [0, 1] where n is 0."""
    import numpy as np
    from scipy import stats  # heavy: loaded when a test is computed, not when anvil starts

    k, n = np.asarray(k, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, stats.beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        high = np.where(k < n, stats.beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return np.nan_to_num(low, nan=0.0), np.nan_to_num(high, nan=1.0)


def paired_binary(b, c, n, alpha: float = ALPHA):
    """McNemar's exact p-value and the interval of the difference in accuracy that inverts it, for `b`
    items only `mine` got right and `c` only `theirs`, out of `n`; elementwise over arrays."""
    import numpy as np
    from scipy import stats

    b, c, n = np.asarray(b), np.asarray(c), np.asarray(n)
    m = b + c
    p = np.minimum(1.0, 2 * np.minimum(stats.binom.cdf(b, m, 0.5), stats.binom.sf(b - 1, m, 0.5)))
    p = np.where(m > 0, p, 1.0)
    low_share, high_share = _clopper_pearson(b, m, alpha)
    fewest, most = (n * bound for bound in _clopper_pearson(m, n, COUNT_LEVEL))
    # Each bound scaled by the count that takes it furthest from the estimate: the sign, which decides
    # whether 0 is excluded, is the exact test's.
    low = (2 * low_share - 1) * np.where(low_share < 0.5, most, fewest) / n
    high = (2 * high_share - 1) * np.where(high_share > 0.5, most, fewest) / n
    return p, low, high


def mcnemar(mine: Sequence[bool], theirs: Sequence[bool], alpha: float = ALPHA) -> Comparison:
    """Accuracy of `mine` minus accuracy of `theirs`, item by item (the same items, in the same order)."""
    if len(mine) != len(theirs):
        raise ValueError(f"paired results differ in length: {len(mine)} and {len(theirs)}")
    n = len(mine)
    if n == 0:
        return Comparison(0.0, None, None, None, 0, "no items")
    b = sum(m and not t for m, t in zip(mine, theirs, strict=True))  # only mine right
    c = sum(t and not m for m, t in zip(mine, theirs, strict=True))  # only theirs right
    p, low, high = paired_binary(b, c, n, alpha)
    return Comparison((b - c) / n, float(p), float(low), float(high), n)


def clustered_t(d, w, alpha: float = ALPHA) -> tuple[float, float | None, float | None, float | None]:
    """Weighted mean of per-test differences `d`, its p-value and interval from the clustered standard
    error on len(d) - 1 degrees of freedom; p and interval None where the tests all moved alike."""
    import numpy as np
    from scipy import stats

    d, w = np.asarray(d, float), np.asarray(w, float) / np.sum(w)
    k = len(d)
    delta = float(np.sum(w * d))
    se = float(np.sqrt(k / (k - 1) * np.sum(w**2 * (d - delta) ** 2)))
    if se <= NO_SPREAD:  # every test moved alike: a float's last bits are no spread to test
        return delta, None, None, None
    df = k - 1
    p = float(2 * stats.t.sf(abs(delta) / se, df))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    return delta, p, delta - half, delta + half


def clustered(
    mine: Sequence[float], theirs: Sequence[float], weights: Sequence[float] | None = None, alpha: float = ALPHA
) -> Comparison:
    """Mean per-cluster score of `mine` minus `theirs` (a cluster: one test, its runs averaged), weighted."""
    import numpy as np

    if len(mine) != len(theirs):
        raise ValueError(f"paired results differ in length: {len(mine)} and {len(theirs)}")
    x, y = np.asarray(mine, float), np.asarray(theirs, float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    n = len(x)
    if n == 0:
        return Comparison(0.0, None, None, None, 0, "no tests")
    observed = float(np.sum(w * (x - y)) / np.sum(w))
    if n < MIN_TESTS:
        return Comparison(observed, None, None, None, n, f"too few tests for an interval ({n}; at least {MIN_TESTS})")
    delta, p, low, high = clustered_t(x - y, w, alpha)
    if p is None and float(np.max(np.abs(x - y))) <= NO_SPREAD:
        return Comparison(0.0, None, None, None, n, "no test changed")
    if p is None:
        return Comparison(delta, None, None, None, n, ALIKE)
    return Comparison(delta, p, low, high, n)


def significant(p_value: float | None, alpha: float) -> bool:
    """What a flag, a colour or the word may claim: a p-value (adjusted, where a family is flagged) below alpha."""
    return p_value is not None and p_value < alpha


def holm(p_values: dict[str, float | None]) -> dict[str, float | None]:
    """Holm's step-down adjustment of a family of p-values (None kept out of the family)."""
    tested = sorted((p, name) for name, p in p_values.items() if p is not None)
    adjusted: dict[str, float | None] = {name: None for name, p in p_values.items() if p is None}
    running = 0.0
    for i, (p, name) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - i) * p))
        adjusted[name] = running
    return adjusted
