"""The statistics never overstate: every interval excludes 0 exactly when the p-value beside it is below
alpha, over every 2x2 table up to n = 60 and random ones up to n = 1,000, and over random suites."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as scipy_stats

from anvil.evaluation import stats
from anvil.evaluation.results import Delta, ScoredTest, SuiteScores
from anvil.evaluation.scores import deltas, summarize


def _tables(n_max: int):
    b, c, n = zip(
        *[(b, c, n) for n in range(1, n_max + 1) for b in range(n + 1) for c in range(n - b + 1)], strict=True
    )
    return np.array(b), np.array(c), np.array(n)


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2])
def test_the_knowledge_interval_excludes_zero_exactly_when_mcnemar_rejects(alpha):
    b, c, n = _tables(60)
    rng = np.random.default_rng(0)
    big = rng.integers(61, 1001, 20_000)
    shares = rng.dirichlet([1, 1, 8], big.size)
    found = np.array([rng.multinomial(k, s) for k, s in zip(big, shares, strict=True)])
    b, c, n = np.concatenate([b, found[:, 0]]), np.concatenate([c, found[:, 1]]), np.concatenate([n, big])
    p, low, high = stats.paired_binary(b, c, n, alpha)
    assert np.array_equal((low > 0) | (high < 0), p < alpha)
    delta = (b - c) / n
    assert np.all((low <= delta + 1e-12) & (delta <= high + 1e-12) & (low >= -1) & (high <= 1))


def test_mcnemar_p_is_the_exact_binomial_test():
    rng = np.random.default_rng(1)
    for b, c in rng.integers(0, 40, (200, 2)):
        mine = [True] * b + [False] * c + [True] * 7
        theirs = [False] * b + [True] * c + [True] * 7
        expected = scipy_stats.binomtest(int(b), int(b + c), 0.5).pvalue if b + c else 1.0
        assert stats.mcnemar(mine, theirs).p_value == pytest.approx(expected, abs=1e-12)
    # the review's table: n = 100, 0 vs 5 discordant pairs: p = 0.0625 and an interval that holds 0
    found = stats.mcnemar([False] * 5 + [True] * 95, [True] * 100)
    assert found.p_value == pytest.approx(0.0625) and found.ci_low < 0 < found.ci_high


@pytest.mark.parametrize(
    ("n", "only_mine", "only_theirs"),
    [
        (100, 0.02, 0.02),
        (100, 0.05, 0.01),
        (500, 0.05, 0.03),
        (60, 0.1, 0.1),
        (30, 0.1, 0.0),
        (1000, 0.01, 0.005),
        (200, 0.2, 0.1),
    ],
)
def test_the_knowledge_interval_covers_the_true_difference(n, only_mine, only_theirs):
    cells = np.random.default_rng(2).multinomial(n, [only_mine, only_theirs, 1 - only_mine - only_theirs], 2000)
    _, low, high = stats.paired_binary(cells[:, 0], cells[:, 1], n)
    truth = only_mine - only_theirs
    assert np.mean((low <= truth) & (truth <= high)) >= 0.94  # 95% nominal, 2,000 draws: 0.94 is 2.1 SE below


def test_the_suite_interval_is_the_clustered_t_interval_and_agrees_with_its_p():
    rng = np.random.default_rng(3)
    for _ in range(2000):
        k = int(rng.integers(3, 40))
        d, w = rng.normal(rng.normal(0, 0.5), rng.uniform(0.1, 2), k), rng.uniform(0.5, 3, k)
        delta, p, low, high = stats.clustered_t(d, w)
        assert (low > 0 or high < 0) == (p < stats.ALPHA) and low <= delta <= high
    d = np.array([4, 3, 2, 1, 0.5])
    reference = scipy_stats.ttest_1samp(d, 0)
    found = stats.clustered([x + 1 for x in d], [1] * 5)
    assert found.p_value == pytest.approx(reference.pvalue, abs=1e-4)
    ci = reference.confidence_interval(0.95)
    assert (found.ci_low, found.ci_high) == pytest.approx((ci.low, ci.high), abs=1e-4)
    assert stats.clustered([5, 1], [1, 1], weights=[3, 1]).delta == pytest.approx(3.0), "weights as the composite's"


def test_few_tests_or_no_spread_give_no_interval_and_say_why():
    two = stats.clustered([1.0, 1.5], [1.5, 2.0])
    assert (two.p_value, two.ci_low, two.ci_high) == (None, None, None) and "too few tests" in two.reason
    one = stats.clustered([0.0], [1.667])
    assert one.ci_low is None and one.delta == pytest.approx(-1.667)
    alike = stats.clustered([3, 3, 3], [2, 2, 2])
    assert alike.p_value is None and "same amount" in alike.reason
    unchanged = stats.clustered([2, 2, 2], [2, 2, 2])
    assert (unchanged.p_value, unchanged.ci_low, unchanged.ci_high, unchanged.reason) == (
        None,
        None,
        None,
        "no test changed",
    ), "no zero-width interval"
    # every test one run's step down (a third of a point): float noise is no spread, and no significance
    thirds = stats.clustered([sum(r) / 3 for r in ([5, 5, 4], [3, 3, 2], [1, 1, 0])], [5, 3, 1])
    assert thirds.p_value is None and "same amount" in thirds.reason


def test_holm_adjusts_a_family():
    adjusted = stats.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": None})
    assert adjusted == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06, "d": None})


def _summary(means: dict[str, tuple[str, float]]) -> SuiteScores:
    tests = {
        t: ScoredTest(mean=m, weight=1.0, category=c, runs=[m] * 3, std=0.0, high_variance=False, gate=None)
        for t, (c, m) in means.items()
    }
    categories = {c: float(np.mean([m for cc, m in means.values() if cc == c])) for c, _ in means.values()}
    return SuiteScores(tests=tests, categories=categories, composite=float(np.mean([m for _, m in means.values()])))


def moved(i: int) -> float:
    """Test i's mean after: the tone tests up about two points (with some spread), the voice tests split."""
    return (4.0 + 0.05 * (i % 2) if i < 8 else 0.5 + (i % 2) * 2.5) + 0.1 * (i % 3)


def test_json_flags_only_significant_deltas_after_holm():
    before = _summary({f"t{i}": ("tone" if i < 8 else "voice", 2.0 + 0.1 * (i % 3)) for i in range(12)})
    after = _summary(
        {
            f"t{i}": (
                "tone" if i < 8 else "voice",
                (4.0 + 0.05 * (i % 2) if i < 8 else 0.5 + (i % 2) * 2.5) + 0.1 * (i % 3),
            )
            for i in range(12)
        }
    )
    found = deltas(after, before)
    tone, voice = (found.significance.categories[c] for c in ("tone", "voice"))
    assert tone.significant and tone.p_holm >= tone.p_value
    assert found.categories["voice"] < 0 and not voice.significant, voice
    assert found.significance.tests == stats.PER_TEST


def test_a_gate_on_an_interval_there_is_not_says_why():
    from anvil.evaluation.scores import check_gates
    from anvil.recipe.evaluation import Gate

    before, after = (
        _summary({"a": ("tone", 2.0), "b": ("tone", 3.0)}),
        _summary({"a": ("tone", 1.0), "b": ("tone", 2.5)}),
    )
    suite = after.model_copy(update={"delta_vs_parent": deltas(after, before)})
    [found] = check_gates({"s": suite}, [Gate(model="v2", metric="s.delta_vs_parent.tone.ci_high", min=0)])
    assert found["value"] is None and not found["passed"] and "too few tests" in found["reason"]


def test_the_page_colours_a_delta_only_when_it_is_significant():
    from anvil.stages.report.page import _signed

    assert _signed(-3.75, False) == _signed(2.0, None) == _signed(None, True) == "flat"
    assert (_signed(-0.5, True), _signed(0.5, True)) == ("down", "up")


def test_a_flag_the_interval_and_p_agree_on_every_mcnemar_table_up_to_200_items():
    n = np.concatenate([np.full((k + 1) * (k + 2) // 2, k) for k in range(1, 201)])
    b = np.concatenate([np.concatenate([np.arange(k + 1 - c) for c in range(k + 1)]) for k in range(1, 201)])
    c = np.concatenate([np.concatenate([np.full(k + 1 - c, c) for c in range(k + 1)]) for k in range(1, 201)])
    for alpha in (0.05, 0.01):
        p, low, high = stats.paired_binary(b, c, n, alpha)
        excludes = (low > 0) | (high < 0)
        assert np.array_equal(excludes, p < alpha), np.flatnonzero(excludes != (p < alpha))[:5]


def test_a_flag_the_interval_and_p_agree_on_random_suites_as_stored():
    from anvil.recipe.suite import Scoring

    rng = np.random.default_rng(7)
    tests = [Scoring(id=f"t{i}", category="c" if i % 2 else "d", rubric="r") for i in range(8)]
    for trial in range(300):
        before = {t.id: list(rng.integers(1, 6, 3).astype(float)) for t in tests}
        if trial % 3 == 0:  # every test one point down in one run: a third of a point each, no spread
            after = {t: [runs[0] - 1, *runs[1:]] for t, runs in before.items()}
        else:
            after = {t: [float(min(5, max(0, s + rng.integers(-2, 3)))) for s in runs] for t, runs in before.items()}
        found = deltas(summarize(tests, after, 9.0), summarize(tests, before, 9.0))
        stored = Delta.model_validate_json(found.model_dump_json())  # as results.json holds it
        if trial % 3 == 0:
            assert stored.significance.composite.p_value is None, "no spread, nothing to test"
        for tested in [stored.significance.composite, *stored.significance.categories.values()]:
            p = tested.p_shown
            excludes = tested.ci_low is not None and (tested.ci_low > 0 or tested.ci_high < 0)
            assert tested.significant == (p is not None and p < 0.05)
            if tested.p_holm is None:
                assert tested.significant == excludes, tested


def test_the_stored_mcnemar_result_flags_what_its_own_p_and_interval_say():
    mine = [True] * 45 + [False] * 74 + [True] * 0
    theirs = [False] * 45 + [True] * 74
    stored = json.loads(json.dumps(stats.mcnemar(mine, theirs, 0.01).to_json()))  # n=119, b=45, c=74
    assert stored["p_value"] < 0.01 and stored["ci_high"] < 0, "p 0.009966: not stored as 0.01"
