"""calibration: a suite's judge checked against a person. The judge scores each answer of the suite's
calibration set (recipe/calibration.py) as it scores a model's transcripts (cached by content like any
judge call), and the agreement is recorded: rank correlation, quadratic-weighted kappa, mean absolute
error and bias, each with its interval (evaluation/agreement.py). Below `[eval] judge_agreement` the
stage's outcome is `failed`, naming the figure: every evaluation of that suite needs it, so they, their
gates and the served model are blocked until the judge is fixed or the threshold changed. A changed
judge (kind, command, model, prompt) re-runs calibration first. Writes `calibration.json`."""

from __future__ import annotations

from typing import Any

from anvil.errors import EXIT_GATES, AnvilError
from anvil.evaluation.agreement import agreement, pairwise, shortfalls
from anvil.evaluation.judges import Judging
from anvil.evaluation.parallel import in_order
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import Outcome, StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.evaluation import Judge, JudgeAgreement, label
from anvil.recipe.models import Recipe
from anvil.recipe.suite import Scoring
from anvil.stages import evaluate, transcripts
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View
from anvil.stages.stage import Recorded, Result, Stage, StageRun, Suites, artifact_json, read_figures
from anvil.state.atomic import write_json

CODE_VERSION = 1
ARTIFACT = "calibration.json"


class Case(Strict):
    """One scored answer, with what the judge needs of its test."""

    test: Scoring
    system: str | None = None
    turns: list[str]
    answer: str
    tools_called: list[str] = []
    score: float  # the person's


class CalibrationConfig(Strict):
    judge: Judge
    cases: list[Case]
    agreement: JudgeAgreement
    alpha: float


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    if recipe.eval is None:
        return []
    out = []
    for path in recipe.eval.suites:
        tests = {t.id: t for t in suites.get(path, [])}
        rows = getattr(suites.get(path), "calibration", [])
        if not rows:
            continue
        cases = [
            Case(
                test=tests[r.test].scoring(),
                system=tests[r.test].system,
                turns=tests[r.test].turns,
                answer=r.answer,
                tools_called=r.tools_called,
                score=r.score,
            )
            for r in rows
        ]
        config = CalibrationConfig(
            judge=recipe.eval.judge, cases=cases, agreement=recipe.eval.judge_agreement, alpha=recipe.eval.alpha
        )
        out.append(
            Node(
                stage_id("calibration", transcripts.suite_name(path)), "calibration", config, code_version=CODE_VERSION
            )
        )
    return out


def transcript_of(case: Case) -> dict[str, Any]:
    """A scored answer as the judge sees a model's transcript: the test's turns, then the answer."""
    messages = [{"role": "system", "content": case.system}] if case.system else []
    messages += [{"role": "user", "content": turn} for turn in case.turns]
    messages.append({"role": "assistant", "content": case.answer})
    return {"messages": messages, "final": case.answer, "tools_called": case.tools_called}


def run(ctx: StageRun[CalibrationConfig]) -> Result:
    config = ctx.config
    judging = Judging(config.judge, ctx.cache / "judge", retries=config.judge.retries)
    judged: list[dict[str, Any]] = []
    failures: list[str] = []
    for i, (case, verdict) in enumerate(
        in_order(lambda c: judging(c.test, transcript_of(c)), config.cases, config.judge.concurrency)
    ):
        ctx.progress(i / len(config.cases), f"judging calibration answer {i + 1} ({case.test.id})")
        if verdict.error:
            failures.append(f"{case.test.id} (answer {i + 1}): {verdict.error}")
        else:
            judged.append(
                {
                    "test": case.test.id,
                    "person": case.score,
                    "judge": verdict.score,
                    "rationale": verdict.rationale,
                    "panel": list(verdict.panel),
                }
            )
    if failures:
        raise AnvilError("judge failures on the calibration set:\n  " + "\n  ".join(failures))
    found = agreement([j["person"] for j in judged], [j["judge"] for j in judged], config.alpha)
    if config.judge.judges:  # each panel judge alone against the person, and the judges against each other
        names = [label(j) for j in config.judge.judges]
        found["panel"] = {
            "members": [
                {
                    "judge": name,
                    **agreement([j["person"] for j in judged], [j["panel"][i] for j in judged], config.alpha),
                }
                for i, name in enumerate(names)
            ],
            "pairs": pairwise(names, [j["panel"] for j in judged], config.alpha),
        }
    missed = shortfalls(found, config.agreement.model_dump())
    write_json(ctx.out / ARTIFACT, {"agreement": found, "answers": judged, "shortfalls": missed})
    metrics = Calibrated(
        **found,
        thresholds=config.agreement.model_dump(exclude_none=True),
        shortfalls=missed,
        judge_calls=judging.counts[0],
        judge_cache_hits=judging.counts[1],
    )
    if missed:
        return Result.of(metrics, Outcome.FAILED, "judge disagrees with the person: " + "; ".join(missed))
    if not metrics.thresholds:
        return Result.of(metrics, Outcome.WARNED, UNCHECKED)
    return Result.of(metrics)


class Calibrated(Recorded):
    """The judge against the person on the calibration set: each agreement figure (`value`, its interval or
    why there is none; evaluation/agreement.py), a panel's members each alone and in pairs, the thresholds
    the outcome was decided by and each one missed."""

    n: int
    alpha: float
    kappa: dict[str, Any]
    spearman: dict[str, Any]
    mae: dict[str, Any]
    bias: dict[str, Any]
    panel: dict[str, Any] | None = None
    thresholds: dict[str, float]
    shortfalls: list[str]
    judge_calls: int = 0
    judge_cache_hits: int = 0


def figures(record: StageRecord) -> Calibrated:
    return read_figures(Calibrated, record)


THRESHOLDS = ("min_kappa", "min_spearman", "max_mae", "max_abs_bias")  # as the recipe's judge_agreement lists them
UNCHECKED = "no judge_agreement thresholds: the judge's agreement with the person is measured, not checked"


def verdict(found: Calibrated) -> str:
    """The sentence that judges a judge, from the thresholds its outcome was decided by."""
    if found.shortfalls:
        return "Failed: " + "; ".join(found.shortfalls) + "."
    thresholds = found.thresholds
    if not thresholds:
        return f"Not judged: {UNCHECKED} (set [eval] judge_agreement)."
    met = ", ".join(f"{key} = {thresholds[key]:g}" for key in THRESHOLDS if key in thresholds)
    return f"Agrees with the person within every threshold ({met})."


def results_of(artifact) -> dict[str, Any]:
    return artifact_json(artifact, ARTIFACT)


def failure_lines(record: StageRecord) -> list[str]:
    return [f"judge disagrees with the calibration set: {line}" for line in figures(record).shortfalls]


def summary(record: StageRecord) -> str:
    m = figures(record)
    if m.shortfalls:
        return "; ".join(m.shortfalls)
    shown = [
        f"{label} {found['value']:.2f}"
        for found, label in ((m.kappa, "kappa"), (m.spearman, "rho"))
        if found.get("value") is not None
    ]
    return f"{m.n} answers: " + ", ".join(shown + [f"MAE {m.mae['value']:.2f}", f"bias {m.bias['value']:+.2f}"])


FIGURES = (
    ("kappa", "quadratic-weighted kappa"),
    ("spearman", "Spearman's rank correlation"),
    ("mae", "mean absolute error"),
    ("bias", "bias (judge - person)"),
)


def page(config: ReportConfig, view: View) -> dict[str, Any]:
    """The Judge section: for each suite, the judge against a person (its calibration set's agreement figures
    with their intervals, the thresholds and what was missed) or a warning that it was never checked, and the
    judge's own spread from repeated judgements beside the models' run-to-run spread."""
    rows = []
    for suite in _suites(config, view):
        sid = stage_id("calibration", suite)
        row: dict[str, Any] = {"suite": suite, "calibrated": sid in view.states, "state": view.states.get(sid)}
        record = view.built(sid) if sid in view.states else None
        if record is not None:
            m = figures(record)
            row |= {
                "n": m.n,
                "thresholds": m.thresholds,
                "shortfalls": m.shortfalls,
                "verdict": verdict(m),
                "figures": [{"key": key, "label": label, **getattr(m, key)} for key, label in FIGURES],
                "panel": m.panel,
            }
        row["noise"] = [
            {"model": model, **noise.model_dump()}
            for model in config.evaluated
            if (results := evaluate.scored(view, model))
            and (scores := results.suites.get(suite))
            and (noise := scores.noise)
        ]
        rows.append(row | {"from": sid})
    return {"judge": rows}


def _suites(config: ReportConfig, view: View) -> list[str]:
    """The suites the evaluated models were scored on, and those with a calibration stage."""
    found: dict[str, None] = {}
    for model in config.evaluated:
        record = view.built(stage_id("eval", model))
        found |= dict.fromkeys(evaluate.figures(record).suites) if record else {}
    found |= dict.fromkeys(sid.removesuffix(".calibration") for sid in view.states if sid.endswith(".calibration"))
    return list(found)


STAGE = Stage(
    kind="calibration",
    code_version=CODE_VERSION,
    nodes=nodes,
    run=run,
    summary=summary,
    in_plan=True,
    failure_exit=EXIT_GATES,
    failure_lines=failure_lines,
    failure_means="its judge's scores do not count: evaluations blocked",
    figures=Calibrated,
    page=page,
)
