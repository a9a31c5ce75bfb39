"""The typed, versioned results of evaluating a model: its scores on the suites (what the eval stage writes
to `results.json`) and its knowledge benchmarks (the knowledge stage's `results.json`). Every reader (gates,
the sweep's choice, the served check, the reward guard, the page, `eval show`) gets them back through
`EvalResults.read` and `KnowledgeResults.read` (state/figures.py), never as a dict read by string key.
Files written before `format` existed have the shape of version 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from anvil.state.figures import Figures, read


class Comparison(Figures):
    """A paired comparison (evaluation/stats.py): the delta, its p-value and interval at 1 - alpha, or the
    reason there are none; `p_holm` and `significant` once it is one of several (a suite's categories)."""

    delta: float
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    reason: str | None = None
    p_holm: float | None = None
    significant: bool = False

    @property
    def p_shown(self) -> float | None:
        """The p-value a reader compares with alpha: Holm's where there is one."""
        return self.p_holm if self.p_holm is not None else self.p_value


class Significance(Figures):
    alpha: float
    composite: Comparison
    categories: dict[str, Comparison]
    tests: str  # why single tests carry a delta only (stats.PER_TEST)


class Delta(Figures):
    """One suite's differences against another model's summary of it (scores.deltas)."""

    composite: float
    categories: dict[str, float]
    tests: dict[str, float]
    significance: Significance


class ScoredTest(Figures):
    category: str
    runs: list[float]
    mean: float
    std: float
    high_variance: bool
    gate: float | None
    weight: float
    judge_std: float | None = None  # the judge's own spread over repeated judgements (judge_repeats > 1)


class Panel(Figures):
    judges: list[str]
    combine: str
    pairs: list[dict[str, Any]]  # each pair's agreement figures (evaluation/agreement.py)


class Noise(Figures):
    judge_std: float
    run_std: float


class SuiteScores(Figures):
    """A suite's per-test means and spread, category means, the composite and its deltas."""

    tests: dict[str, ScoredTest]
    categories: dict[str, float]
    composite: float
    delta_vs_base: Delta | None = None
    delta_vs_parent: Delta | None = None
    panel: Panel | None = None
    noise: Noise | None = None

    def delta(self, role: str) -> Delta | None:
        """The delta against "base" or "parent", if that model is evaluated too."""
        return self.delta_vs_base if role == "base" else self.delta_vs_parent if role == "parent" else None


class SuiteHeadline(Figures):
    """What the state records of a suite's scores, for `status`, apply's summary and the page's cards: the
    composite, category means, the composite's deltas with their tests, and the high-variance tests."""

    composite: float
    categories: dict[str, float]
    delta_vs_base: float | None = None
    delta_vs_parent: float | None = None
    significance: dict[str, Comparison] = {}  # by "delta_vs_base" / "delta_vs_parent": the composite's test
    high_variance: list[str] = []

    @classmethod
    def of(cls, scores: SuiteScores) -> SuiteHeadline:
        tested = {f"delta_vs_{role}": d for role in ("base", "parent") if (d := scores.delta(role)) is not None}
        return cls(
            composite=scores.composite,
            categories=scores.categories,
            delta_vs_base=scores.delta_vs_base.composite if scores.delta_vs_base else None,
            delta_vs_parent=scores.delta_vs_parent.composite if scores.delta_vs_parent else None,
            significance={k: d.significance.composite for k, d in tested.items()},
            high_variance=[t for t, x in scores.tests.items() if x.high_variance],
        )


class Verdict(Figures):
    score: float
    rationale: str
    judgements: list[float] | None = None  # each repeated judgement (judge_repeats > 1)
    panel: list[float] | None = None  # each panel judge's score


class Run(Figures):
    suite: str
    test: str
    run: int
    transcript: dict[str, Any]  # the conversation as evaluation/agent.py records it
    verdict: Verdict


class EvalResults(Figures):
    format: Literal[1] = 1  # this shape's version: a later one adds its Literal and a conversion
    suites: dict[str, SuiteScores]
    runs: list[Run] = []

    @classmethod
    def read(cls, path: Path) -> EvalResults:
        return read(cls, path)

    def runs_of(self, suite: str, test: str) -> list[Run]:
        return [r for r in self.runs if r.suite == suite and r.test == test]


class Share(Figures):
    """A share correct with lm-eval's standard error (None for one item)."""

    n: int
    score: float
    stderr: float | None


class PairedItems(Comparison):
    """The delta against another model's run of the same items, paired item by item (McNemar's exact test
    and the interval that inverts it; evaluation/stats.py), at `alpha`, with that model's score."""

    alpha: float
    score: float


class BenchmarkScores(Figures):
    title: str
    n: int
    filter: str  # the headline filter; `scores` has every filter's
    chat: str  # how the prompt was put to a chat model (the recipe's `chat`)
    scores: dict[str, float]
    stderrs: dict[str, float | None]
    score: float
    stderr: float | None
    lm_eval_task: str | None = None  # run by lm-eval: the task's name
    overlaps_training: bool = False
    groups: dict[str, Share] = {}  # sub-scores (MMLU-Pro's subjects)
    delta_vs_base: PairedItems | None = None
    delta_vs_parent: PairedItems | None = None
    items: list[dict[str, Any]] = []  # each item: key, prompt, response, extracted and correct per filter

    def delta(self, role: str) -> PairedItems | None:
        """The delta against "base" or "parent", if that model asked the same items."""
        return self.delta_vs_base if role == "base" else self.delta_vs_parent if role == "parent" else None


class KnowledgeResults(Figures):
    format: Literal[1] = 1  # this shape's version: a later one adds its Literal and a conversion
    benchmarks: dict[str, BenchmarkScores]

    @classmethod
    def read(cls, path: Path) -> KnowledgeResults:
        return read(cls, path)
