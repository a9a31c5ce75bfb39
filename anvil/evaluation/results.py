"""The typed, versioned result of scoring a model on the suites: what the eval stage writes to
`results.json`, and what every reader (gates, the sweep's choice, the served check, the page, `eval show`,
the model card) gets back through `EvalResults.read`, instead of a dict read by string key.

`format` is the version of this shape: a reader refuses a version it does not know with an error naming
the file, never a KeyError. Files written before the field existed have the shape of version 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from anvil.errors import AnvilError


class Figures(BaseModel):
    """Read back exactly as written; a field this version does not know is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
        """The results in `path`: an error naming it when it is missing, damaged or of a version this Anvil
        does not read."""
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            why = "missing"
        except OSError as e:
            why = f"unreadable ({e.strerror})"
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the file"
            why = f"not results this Anvil reads ({where}: {first['msg']})"
        raise AnvilError(
            f"{path}: {why}: the artifact was changed outside Anvil or written by another version; "
            "`anvil plan` shows what to rebuild"
        )

    def runs_of(self, suite: str, test: str) -> list[Run]:
        return [r for r in self.runs if r.suite == suite and r.test == test]
