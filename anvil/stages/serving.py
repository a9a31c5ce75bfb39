"""serving: the seed's serving validation, on the server `apply` keeps running. The served model answers
each suite once (run 1's seed, the evaluation's settings), the evaluation's judge scores it (cached like
any verdict), and its composite is set beside the evaluation's composite over all its runs, with that
evaluation's own run-to-run spread: within it or not, and the tests that drive the gap. A gap outside the
spread is a warning, not a failure: the served model is the one that passed its gates."""

from __future__ import annotations

from typing import Any

from anvil.backends.machine import Speed
from anvil.errors import AnvilError
from anvil.estimates import first_run
from anvil.estimates.cost import Cost, Work
from anvil.evaluation.agent import converse
from anvil.evaluation.judges import Judging
from anvil.evaluation.parallel import in_order
from anvil.evaluation.results import SuiteScores
from anvil.evaluation.scores import summarize
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import Outcome, StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.models import Recipe
from anvil.stages import evaluate, transcripts
from anvil.stages.evaluate import EvalConfig
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View
from anvil.stages.serve import server_of
from anvil.stages.stage import Parallel, Recorded, Result, Stage, StageRun, Suites, read_figures
from anvil.stages.transcripts import TranscriptsConfig
from anvil.state.atomic import write_json

CODE_VERSION = 1
ARTIFACT = "serving.json"
DRIVERS = 3  # tests named as driving a gap, the largest first


class ServingConfig(Strict):
    asked: TranscriptsConfig  # what the served model is asked, once
    scored: EvalConfig  # how its answers are judged and counted


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    model = recipe.serve.model if recipe.serve else None
    asked, scored = transcripts.config_of(recipe, suites), evaluate.config_of(recipe, suites)
    if model is None or recipe.eval is None or model not in recipe.eval.compare or not asked or not scored:
        return []
    return [
        Node(
            stage_id("serving"),
            "serving",
            ServingConfig(asked=asked, scored=scored),
            needs={"serve": "serve", "scores": stage_id("eval", model)},
            code_version=CODE_VERSION,
            model=model,
            options=Parallel(concurrency=recipe.eval.concurrency, sampled=recipe.eval.temperature > 0),
        )
    ]


def run(ctx: StageRun[ServingConfig]) -> Result:
    asked, scored = ctx.config.asked, ctx.config.scored
    server = server_of(ctx.records["serve"])
    judging = Judging(scored.judge, ctx.cache / "judge", retries=scored.judge.retries)
    items = [(suite, test_id) for suite, tests in asked.suites.items() for test_id in tests]

    def served(item: tuple[str, str]):
        suite, test_id = item
        transcript = converse(
            server, asked.suites[suite][test_id], seed=0, temperature=asked.temperature, max_tokens=asked.max_tokens
        )
        return judging(scored.tests[suite][test_id], transcript)

    scores, failures = {}, []
    for i, ((suite, test_id), verdict) in enumerate(in_order(served, items, ctx.concurrency)):
        ctx.progress(i / len(items), f"the served model on {suite}/{test_id}")
        if verdict.error:
            failures.append(f"{suite}/{test_id}: {verdict.error}")
        else:
            scores[(suite, test_id)] = verdict.score
    if failures:
        raise AnvilError("judge failures on the served model's answers:\n  " + "\n  ".join(failures))
    evaluated = evaluate.results_of(ctx.inputs["scores"]).suites
    found = {
        suite: compare(scored, suite, {t: scores[(suite, t)] for t in tests}, evaluated[suite])
        for suite, tests in scored.tests.items()
    }
    write_json(ctx.out / ARTIFACT, {"suites": found})
    warnings = [
        f"{suite}: the served model's 1-run composite {f['served']:.2f} is outside the evaluation's "
        f"run-to-run spread {min(f['runs']):.2f}-{max(f['runs']):.2f}, driven by "
        + ", ".join(d["test"] for d in f["driven_by"])
        for suite, f in found.items()
        if not f["within_noise"]
    ]
    return Result.judged(ServedScores(suites=found, warnings=warnings).recorded(), warnings, Outcome.WARNED)


class ServedScores(Recorded):
    """Per suite, the served model's one-run composite against the evaluation's runs (`compare`), and a
    warning for each suite outside their spread."""

    suites: dict[str, dict[str, Any]]
    warnings: list[str] = []


def figures(record: StageRecord) -> ServedScores:
    return read_figures(ServedScores, record)


def compare(scored: EvalConfig, suite: str, served: dict[str, float], summary: SuiteScores) -> dict[str, Any]:
    """The served run's composite against the evaluation's, the composite of each of its runs alone, and the
    tests whose served score departs most from their evaluated mean."""

    tests = list(scored.tests[suite].values())
    composite = lambda runs: summarize(tests, runs, scored.high_variance).composite  # noqa: E731
    per_run = [composite({t.id: [summary.tests[t.id].runs[r]] for t in tests}) for r in range(scored.runs)]
    one = composite({t: [score] for t, score in served.items()})
    gaps = sorted(((t.id, served[t.id] - summary.tests[t.id].mean) for t in tests), key=lambda g: -abs(g[1]))
    drivers = [
        {"test": t, "served": served[t], "evaluated": summary.tests[t].mean, "gap": round(gap, 3)}
        for t, gap in gaps
        if abs(gap) > 1e-9
    ][:DRIVERS]
    return {
        "served": one,
        "evaluated": summary.composite,
        "gap": round(one - summary.composite, 3),
        "runs": per_run,
        "within_noise": min(per_run) - 1e-9 <= one <= max(per_run) + 1e-9,
        "driven_by": drivers,
    }


def summary(record: StageRecord) -> str:
    parts = []
    for suite, f in figures(record).suites.items():
        verdict = "within the runs' spread" if f["within_noise"] else "outside the runs' spread"
        parts.append(f"{suite}: served 1-run {f['served']:.2f} vs evaluated {f['evaluated']:.2f} ({verdict})")
    return "; ".join(parts)


def _asked_once(work: Work, units: float, speed: Speed) -> float:
    """The served model asked each test once."""
    asked = {**work.settings["asked"], "runs": 1}
    tests = sum(len(s) for s in asked["suites"].values())
    return first_run.generation(asked, work.shape, tests * asked["max_tokens"], speed, work.in_flight)


COST = Cost(evaluation=True, start_s=0.5, first_run=_asked_once)


def page(config: ReportConfig, view: View) -> dict[str, Any]:
    """A row per suite: the served model's 1-run composite, the evaluation's, each of its runs' and the tests
    that drive the gap (the seed's "within noise" question)."""
    record = view.built("serving")
    if record is None:
        return {"served": []}
    model = record.config.get("model")
    return {"served": [{"suite": s, "model": model, **f, "from": "serving"} for s, f in figures(record).suites.items()]}


STAGE = Stage(
    kind="serving",
    code_version=CODE_VERSION,
    nodes=nodes,
    run=run,
    summary=summary,
    cost=COST,
    figures=ServedScores,
    page=page,
)
