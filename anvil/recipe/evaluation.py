"""The recipe's `[eval]` table and `[[gates]]`: judges, suites, benchmarks and thresholds."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from anvil.recipe.base import DATA_PATTERN, ENV_PATTERN, NAME_PATTERN, NonEmpty, Seed, Strict

DETERMINISTIC = {"rules"}  # judges that answer the same when asked again: repeats are not asked of them


def label(judge: Judge) -> str:
    """A judge in a few words, for the panel's agreement table: `command claude`, `openai gpt-4o`, `rules`."""
    if judge.kind == "command" and judge.argv:
        return f"command {judge.argv[0].rsplit('/', 1)[-1]}" + (f" {judge.argv[-1]}" if len(judge.argv) > 1 else "")
    if judge.kind == "openai":
        return f"openai {judge.model}"
    return judge.kind


class Judge(Strict):
    kind: Literal["rules", "command", "openai", "panel"] = Field(
        default="rules",
        description="`rules` (deterministic checks), `command` (a program reading the prompt on stdin), "
        "`openai` (an OpenAI-compatible endpoint), or `panel` (several judges, combined).",
    )
    judges: list[Judge] | None = Field(
        default=None,
        min_length=2,
        max_length=8,
        description="The panel's judges (kind panel), each scoring every answer; none of them a panel.",
    )
    combine: Literal["mean", "median"] = Field(
        default="median", description="How a panel's scores make one (kind panel)."
    )
    argv: list[NonEmpty] | None = Field(default=None, min_length=1, description="Program and arguments (kind command).")
    url: str | None = Field(
        default=None, pattern=r"^https?://[^\s/]+", description="Base URL of the endpoint (kind openai)."
    )
    model: str | None = Field(default=None, min_length=1, description="Judge model name (kind openai).")
    api_key_env: str | None = Field(
        default=None, pattern=ENV_PATTERN, description="Environment variable with the judge's API key."
    )
    timeout_s: float = Field(default=120.0, gt=0, le=86400, description="Seconds one judge call may take.")
    retries: int = Field(default=3, ge=1, le=10, description="Attempts per judge call, with exponential backoff.")
    # exclude: how many calls run at once never changes a verdict, so it is no part of the judge's identity
    concurrency: int = Field(default=1, ge=1, le=256, exclude=True, description="Judge calls made at once.")

    @model_validator(mode="after")
    def _kind_needs(self) -> Judge:
        if (self.kind == "panel") != (self.judges is not None):
            raise ValueError("a panel judge needs judges (two or more), and only a panel has them")
        if self.judges and any(j.kind == "panel" for j in self.judges):
            raise ValueError("a panel's judges are single judges, not panels")
        if self.kind == "command" and not self.argv:
            raise ValueError("a command judge needs argv, e.g. argv = ['claude', '-p']")
        if self.kind == "openai" and not (self.url and self.model):
            raise ValueError("an openai judge needs url and model")
        return self


class JudgeAgreement(Strict):
    """What the judge must reach against a person's scores (each suite's calibration set) for its scores to
    count: below any of these the suite's calibration fails, and what its evaluations feed is blocked."""

    min_kappa: float | None = Field(default=None, ge=-1, le=1, description="Quadratic-weighted Cohen's kappa.")
    min_spearman: float | None = Field(default=None, ge=-1, le=1, description="Spearman's rank correlation.")
    max_mae: float | None = Field(default=None, ge=0, le=5, description="Mean absolute error, in score points.")
    max_abs_bias: float | None = Field(
        default=None, ge=0, le=5, description="Largest mean signed error (judge - person) either way."
    )


class Knowledge(Strict):
    """One knowledge benchmark: a protocol Anvil ships (`benchmark`) or an lm-evaluation-harness task (`task`)."""

    benchmark: Literal["gsm8k_cot", "mmlu_pro", "qa"] | None = Field(
        default=None,
        description="A protocol Anvil ships: `gsm8k_cot` and `mmlu_pro` as lm-evaluation-harness runs them; "
        "`qa`, questions with one exact answer each (rows of `question`, `answer`, optional `system` and "
        "`pattern`). Either this or `task`.",
    )
    task: str | None = Field(
        default=None,
        pattern=r"^[^\x00-\x1f]+$",
        description="An lm-evaluation-harness task, run by lm-eval itself (`pip install 'anvil[lm-eval]'`): a "
        "task YAML file (`.yaml`, relative to the recipe's folder; its data files beside it) or the name of a "
        "task lm-eval ships, with `data`. Generation tasks only (`generate_until`), read offline. Either this "
        "or `benchmark`.",
    )
    name: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="The name its scores go by (`qa` and tasks; default: the task's name or the file's stem, "
        "`qa`). The published protocols keep their own, which say every departure.",
    )
    metric: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="A task's metric scored per item, 0 or 1 (default: the first of its `metric_list`).",
    )
    filter: str | None = Field(
        default=None,
        pattern=r"^[^\x00-\x1f]+$",
        description="The headline filter (`qa`: `exact` or `pattern`; a task: one of its `filter_list` names; "
        "default: the first). Every filter's score is kept and shown.",
    )
    data: str | None = Field(
        default=None,
        pattern=DATA_PATTERN,
        description="Its rows: `path:FILE` (JSONL, relative to the recipe's folder) or `hf:ORG/NAME/FILE` (a "
        "JSONL or Parquet file of a Hugging Face dataset repo, downloaded once); default: the benchmark's "
        "test split on the Hub. For a task, a local file that replaces its test split.",
    )
    fewshot: str | None = Field(
        default=None,
        pattern=DATA_PATTERN,
        description="Few-shot exemplars, as `data` (MMLU-Pro: rows of its validation split, with `cot_content`; "
        "from the Hub by default when `data` is). Without them MMLU-Pro runs 0-shot and its metric says so "
        "(`mmlu_pro_0shot`), so that scores of different protocols are never compared; so does a task whose "
        "exemplars are on the Hub.",
    )
    n: int = Field(
        default=100, ge=1, le=1_000_000, description="Items sampled from the rows; the same for every model."
    )
    seed: Seed = Field(default=0, description="Seed of the sample of items.")
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Generated tokens per item (default: the protocol's: GSM8K-CoT 256, MMLU-Pro 2048, qa 32, a "
        "task's max_gen_toks); another budget is another protocol, and the metric says so (`gsm8k_cot_max32`).",
    )
    chat: Literal["one_turn", "system_header"] = Field(
        default="one_turn",
        description="How the prompt meets the model's chat template: `one_turn`, the whole prompt as one user "
        "turn; `system_header`, the benchmark's header (MMLU-Pro's subject line, a task's description) as a "
        "system turn and the rest as the user's, as lm-eval's `--apply_chat_template` does; its metric says so "
        "(`mmlu_pro_system`).",
    )
    overlaps_training: bool = Field(
        default=False,
        description="Its items ask what a round is trained on, on purpose (a benchmark of what a domain round "
        "taught, kept by the next round or not): said beside its scores, and its items are not reported as "
        "contamination.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Knowledge:
        if (self.benchmark is None) == (self.task is None):
            raise ValueError("a knowledge benchmark needs exactly one of `benchmark` or `task`")
        if self.name is not None and self.benchmark in ("gsm8k_cot", "mmlu_pro"):
            raise ValueError(f"{self.benchmark} goes by its own name, which says every departure (expected no name)")
        if self.metric is not None and self.task is None:
            raise ValueError("`metric` chooses a task's metric (expected it only with `task`)")
        if self.filter is not None and self.benchmark in ("gsm8k_cot", "mmlu_pro"):
            raise ValueError(f"{self.benchmark} keeps its published headline filter (expected no filter)")
        if self.benchmark == "qa" and self.data is None:
            raise ValueError('qa needs its rows (expected `data = "path:FILE"`)')
        if self.benchmark == "qa" and self.fewshot is not None:
            raise ValueError("qa asks without exemplars (expected no fewshot)")
        if self.benchmark == "qa" and self.filter not in (None, "exact", "pattern"):
            raise ValueError(f"qa has no filter {self.filter!r} (expected exact or pattern)")
        return self


class Eval(Strict):
    runs: int = Field(default=3, ge=1, le=100, description="Runs per test, each with its own sampling seed, averaged.")
    temperature: float = Field(default=0.7, ge=0, le=2, description="Sampling temperature of the evaluated model.")
    max_tokens: int = Field(default=96, ge=1, le=1_000_000, description="Generated tokens per model turn.")
    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=0.5,
        description="Significance level: intervals are at 1 - alpha, and a delta is flagged (a word, a colour, "
        "`significant` in JSON) only when its p-value, Holm-adjusted over a suite's categories, is below it.",
    )
    high_variance: float = Field(
        default=2.0, gt=0, le=5, description="Flag a test whose run scores spread (max - min) by at least this much."
    )
    compare: list[str] = Field(default=[], description="Model nodes scored side by side.")
    judge: Judge = Field(default_factory=Judge, description="Who scores the behavioural suite.")
    judge_agreement: JudgeAgreement = Field(
        default_factory=JudgeAgreement,
        description="Thresholds the judge must meet against each suite's calibration set (`<suite>/calibration/"
        "*.jsonl`, answers a person scored); none by default: agreement is measured and shown.",
    )
    judge_repeats: int = Field(
        default=1,
        ge=1,
        le=20,
        description="Judgements of each transcript (their mean is its score): above 1, the judge's own "
        "test-retest spread is reported beside the model's run-to-run spread.",
    )
    suites: list[NonEmpty] = Field(default=[], description="Suite folders, relative to the recipe's folder.")
    knowledge: list[Knowledge] = Field(default=[], description="Knowledge-preservation benchmarks.")
    concurrency: Annotated[int, Field(ge=1, le=256)] | Literal["auto"] = Field(
        default=1,
        description="Requests sent at once to a model's server while generating, or `auto`: as many as the "
        "machine's memory holds KV caches for (at the served KV bits, the longest answer each), at most 8, "
        "chosen by the plan and printed with it. Results do not depend on it: it is in no fingerprint.",
    )
    # exclude: a check of the recipe's files, not something any artifact is made from
    contamination: Literal["warn", "error", "off"] = Field(
        default="warn",
        exclude=True,
        description="When an evaluation prompt (a suite turn, a local knowledge item) appears in training data, "
        "whole or by a 13-word overlap: `warn` (validate and plan say where), `error` (they refuse) or `off`.",
    )


class Gate(Strict):
    model: str = Field(description="Model node the gate applies to.")
    metric: str = Field(
        description="Metric path: `SUITE.composite`, `SUITE.category.NAME`, `SUITE.test.ID`, "
        "`SUITE.delta_vs_base[.CATEGORY]` or `SUITE.delta_vs_parent[.CATEGORY]` (SUITE: the suite folder's "
        "name); `knowledge.BENCHMARK.score`, `knowledge.BENCHMARK.delta_vs_base` or `.delta_vs_parent`. A "
        "delta may end in `.p_value`, `.ci_low` or `.ci_high` to gate on its significance."
    )
    min: float | None = Field(default=None, description="Fail when the metric is below this.")
    max: float | None = Field(default=None, description="Fail when the metric is above this.")

    @model_validator(mode="after")
    def _a_bound(self) -> Gate:
        if self.min is None and self.max is None:
            raise ValueError("a gate needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g} (expected min <= max)")
        return self
