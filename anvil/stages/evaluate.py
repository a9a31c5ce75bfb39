"""eval: a model's transcripts judged and summarised: per-test mean and spread, categories, composite,
and deltas against base and parent when they are compared too. Writes `results.json`.

It generates nothing (stages/transcripts.py does): changing the judge, a rubric or `high_variance`
re-scores the same conversations. Each run's transcript and, once judged, its verdict are kept in the
stage's scratch folder, and judge calls are cached by content: a run stopped by a failing judge
finishes only what is missing next time."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from anvil.errors import AnvilError
from anvil.estimates import first_run
from anvil.estimates.cost import Cost
from anvil.evaluation.agreement import pairwise
from anvil.evaluation.judges import Judging
from anvil.evaluation.parallel import in_order
from anvil.evaluation.results import EvalResults, Noise, Panel, Run, SuiteHeadline, SuiteScores
from anvil.evaluation.scores import deltas, summarize
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.evaluation import DETERMINISTIC, Judge, label
from anvil.recipe.models import Recipe
from anvil.recipe.suite import Scoring
from anvil.stages import transcripts
from anvil.stages.report.charts import bars, drawn
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View
from anvil.stages.stage import Recorded, Result, Stage, StageRun, Suites, read_figures
from anvil.state.atomic import write_json

CODE_VERSION = 3
RESULTS = "results.json"


class EvalConfig(Strict):
    judge: Judge
    high_variance: float
    tests: dict[str, dict[str, Scoring]]  # suite name -> test id -> how it is judged and counted
    runs: int
    alpha: float = 0.05
    judge_repeats: int = 1


def config_of(recipe: Recipe, suites: Suites) -> EvalConfig | None:
    """How every evaluated model's answers are judged (the same for each), or None without suites."""
    settings = recipe.eval
    if settings is None or not settings.suites:
        return None
    return EvalConfig(
        judge=settings.judge,
        high_variance=settings.high_variance,
        tests={transcripts.suite_name(p): {t.id: t.scoring() for t in suites[p]} for p in settings.suites},
        runs=settings.runs,
        alpha=settings.alpha,
        judge_repeats=1 if settings.judge.kind in DETERMINISTIC else settings.judge_repeats,
    )


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    config = config_of(recipe, suites)
    if recipe.eval is None or config is None:
        return []
    settings = recipe.eval
    out = []
    for name in settings.compare:
        against = {"base": recipe.root_of(name), "parent": recipe.models[name].parent}
        needs = {"transcripts": stage_id("transcripts", name)}
        # a judge that fails its calibration blocks every score it would give
        needs |= {f"calibration:{suite}": sid for suite, sid in transcripts.calibrated_suites(recipe, suites).items()}
        needs |= {role: stage_id("eval", m) for role, m in against.items() if m in settings.compare and m != name}
        out.append(Node(stage_id("eval", name), "eval", config, needs=needs, code_version=CODE_VERSION, model=name))
    return out


def run(ctx: StageRun[EvalConfig]) -> Result:
    config = ctx.config
    conversations = transcripts.read(ctx.inputs["transcripts"])
    ctx.scratch.mkdir(parents=True, exist_ok=True)
    todo = [
        (suite, test, r) for suite, tests in config.tests.items() for test in tests.values() for r in range(config.runs)
    ]

    def saved(suite: str, test: Scoring, r: int) -> Path:
        return ctx.scratch / f"{suite}.{test.id}.run{r}.json"

    for suite, test, r in todo:
        if not saved(suite, test, r).exists():
            write_json(saved(suite, test, r), {"transcript": conversations[suite][test.id][r]})

    judging = Judging(config.judge, ctx.cache / "judge", retries=config.judge.retries)

    def judged(job: tuple[str, Scoring, int]) -> tuple[dict, str | None]:
        """The item with its verdict, judged now unless an earlier run did; or the judge's error."""
        suite, test, r = job
        item = json.loads(saved(suite, test, r).read_text())
        if "verdict" not in item:
            verdicts = [judging(test, item["transcript"], repeat) for repeat in range(config.judge_repeats)]
            if error := next((v.error for v in verdicts if v.error), None):
                return item, f"{suite}/{test.id} run {r + 1}: {error}"
            scores = [float(v.score or 0.0) for v in verdicts]
            item["verdict"] = {"score": sum(scores) / len(scores), "rationale": verdicts[0].rationale}
            if len(scores) > 1:
                item["verdict"]["judgements"] = scores
            if verdicts[0].panel:  # each panel judge's score, its mean over the repeats
                item["verdict"]["panel"] = [
                    sum(v.panel[i] for v in verdicts) / len(verdicts) for i in range(len(verdicts[0].panel))
                ]
            write_json(saved(suite, test, r), item)
        return item, None

    failures, results = [], {}
    for i, ((suite, test, r), (item, error)) in enumerate(in_order(judged, todo, config.judge.concurrency)):
        ctx.progress(i / len(todo), f"judging {suite}/{test.id} run {r + 1}")
        if error:
            failures.append(error)
        else:
            results[(suite, test.id, r)] = item
    if failures:
        raise AnvilError(
            "judge failures (finished tests are kept; the next apply judges only these):\n  " + "\n  ".join(failures)
        )

    others = {role: results_of(ctx.inputs[role]) for role in ("base", "parent") if role in ctx.inputs}
    summaries = {}
    for suite, tests in config.tests.items():
        scores = {t: [results[(suite, t, r)]["verdict"]["score"] for r in range(config.runs)] for t in tests}
        summary = summarize(list(tests.values()), scores, config.high_variance)
        if config.judge_repeats > 1:
            summary = noise_floor(
                summary, {t: [results[(suite, t, r)]["verdict"] for r in range(config.runs)] for t in tests}
            )
        if config.judge.judges:
            rows = [results[(suite, t, r)]["verdict"]["panel"] for t in tests for r in range(config.runs)]
            names = [label(j) for j in config.judge.judges]
            panel = Panel(judges=names, combine=config.judge.combine, pairs=pairwise(names, rows, config.alpha))
            summary = summary.model_copy(update={"panel": panel})
        against = {
            f"delta_vs_{role}": deltas(
                summary, others[role].suites.get(suite) if role in others else None, config.alpha
            )
            for role in ("base", "parent")
        }
        summaries[suite] = summary.model_copy(update=against)
    runs = [Run(suite=s, test=t, run=r + 1, **item) for (s, t, r), item in results.items()]
    scored = EvalResults(suites=summaries, runs=runs)
    write_json(ctx.out / RESULTS, scored.model_dump(mode="json"))
    recorded = EvalFigures(
        suites={s: SuiteHeadline.of(v) for s, v in scored.suites.items()},
        judge_calls=judging.counts[0],
        judge_cache_hits=judging.counts[1],
    )
    return Result.of(recorded)


def noise_floor(summary: SuiteScores, verdicts: dict[str, list[dict[str, Any]]]) -> SuiteScores:
    """Each test's judge spread beside its runs' spread: the standard deviation of the judge's repeated
    judgements of one transcript (averaged over runs), so that a high-variance test can be put down to
    the model or to the judge; the suite's means of both."""
    tests = {}
    for test, judged in verdicts.items():
        spreads = [statistics.stdev(v["judgements"]) for v in judged if len(v.get("judgements", [])) > 1]
        judge_std = sum(spreads) / len(spreads) if spreads else 0.0
        tests[test] = summary.tests[test].model_copy(update={"judge_std": judge_std})
    noise = Noise(
        judge_std=statistics.fmean(t.judge_std or 0.0 for t in tests.values()),
        run_std=statistics.fmean(t.std for t in tests.values()),
    )
    return summary.model_copy(update={"tests": tests, "noise": noise})


def results_of(artifact: Path) -> EvalResults:
    """The typed results of a built eval stage."""
    return EvalResults.read(artifact / RESULTS)


class EvalFigures(Recorded):
    """What the state records of an eval stage: each suite's headline (evaluation/results.py) and the judge's
    calls, those answered from the cache apart."""

    suites: dict[str, SuiteHeadline]
    judge_calls: int = 0
    judge_cache_hits: int = 0


def figures(record: StageRecord) -> EvalFigures:
    return read_figures(EvalFigures, record)


def summary(record: StageRecord) -> str:
    """Each suite's composite with its delta against the base (or else the parent)."""
    parts = []
    for suite, s in figures(record).suites.items():
        role = "base" if s.delta_vs_base is not None else "parent"
        delta = s.delta_vs_base if role == "base" else s.delta_vs_parent
        parts.append(f"{suite} {s.composite:.2f}" + (f" ({delta:+.2f} vs {role})" if delta is not None else ""))
    return "; ".join(parts)


def scored(view: View, model: str) -> EvalResults | None:
    """A model's results as the page reads them: None until its eval stage is built and readable."""
    return view.read(stage_id("eval", model), results_of)


def page(config: ReportConfig, view: View) -> dict[str, Any]:
    """Each evaluated model's composites (the cards at the top), its category scores and its high-variance
    tests, each with its deltas and p-values; and the judge's settings for the pipeline table."""
    first = view.first_built("eval")
    return {
        "composites": [card for model in config.evaluated for card in _cards(view, model)],
        "categories": [table for model in config.evaluated for table in _categories(view, model)],
        "high_variance": [row for model in config.evaluated for row in _high_variance(view, model)],
        "architecture": {"judge": {**first.config["judge"], "runs": first.config.get("runs")} if first else None},
    }


def charts(data: dict[str, Any]) -> dict[str, str | None]:
    """Per suite, every evaluated model's category scores side by side."""
    by_suite: dict[str, dict[str, dict[str, float]]] = {}
    for table in data["categories"]:
        by_suite.setdefault(table["suite"], {})[table["model"]] = {r["category"]: r["score"] for r in table["rows"]}
    found = {}
    for suite, models in by_suite.items():
        labels = list(dict.fromkeys(c for scores in models.values() for c in scores))
        series = {m: [s.get(c) for c in labels] for m, s in models.items()}
        found[f"categories-{suite}"] = drawn(bars, f"categories-{suite}", labels, series, "score")
    return found


def _cards(view: View, model: str) -> list[dict[str, Any]]:
    """A card per suite: the composite (N-run average) with its deltas, or the state. A suite no calibration
    stage checks carries a warning: no person vouched for its judge."""
    sid = stage_id("eval", model)
    record = view.built(sid)
    if record is None:
        waiting = [s for s in (stage_id("transcripts", model), sid) if view.states.get(s) == "running"]
        state = "running" if waiting else view.states.get(sid, "pending")
        return [{"model": model, "suite": None, "state": state, "runs": None, "from": sid, "uncalibrated": False}]
    cards = []
    for suite, s in figures(record).suites.items():
        tested = {role: s.significance.get(f"delta_vs_{role}") for role in ("base", "parent")}
        p: dict[str, Any] = {f"p_vs_{role}": t.p_value if t else None for role, t in tested.items()}
        p |= {f"sig_vs_{role}": t.significant if t else None for role, t in tested.items()}
        cards.append(
            {
                "model": model,
                "suite": suite,
                "state": view.states[sid],
                "runs": record.config.get("runs"),
                "composite": s.composite,
                "delta_vs_base": s.delta_vs_base,
                "delta_vs_parent": s.delta_vs_parent,
                **p,
                "from": sid,
                "uncalibrated": stage_id("calibration", suite) not in view.states,
            }
        )
    return cards


def _categories(view: View, model: str) -> list[dict[str, Any]]:
    """Category scores per suite, with deltas vs base and parent and their p-values."""
    results, out = scored(view, model), []
    for suite, s in (results.suites if results else {}).items():
        rows = []
        for name, score in s.categories.items():
            row: dict[str, Any] = {"category": name, "score": score}
            for role in ("base", "parent"):
                delta = s.delta(role)
                tested = delta.significance.categories.get(name) if delta else None
                row[f"delta_vs_{role}"] = delta.categories.get(name) if delta else None
                row[f"p_vs_{role}"] = tested.p_shown if tested else None
                row[f"sig_vs_{role}"] = bool(tested and tested.significant)
            rows.append(row)
        out.append({"model": model, "suite": suite, "rows": rows, "from": stage_id("eval", model)})
    return out


def _high_variance(view: View, model: str) -> list[dict[str, Any]]:
    results = scored(view, model)
    return [
        {
            "model": model,
            "suite": suite,
            "test": test,
            "category": t.category,
            "runs": t.runs,
            "mean": t.mean,
            "std": t.std,
            "from": stage_id("eval", model),
        }
        for suite, s in (results.suites if results else {}).items()
        for test, t in s.tests.items()
        if t.high_variance
    ]


COST = Cost(
    evaluation=True,
    start_s=0.25,
    unit="answers",
    units=lambda work: sum(len(suite) for suite in work.settings["tests"].values()) * work.settings["runs"],
    first_run=first_run.judged,
)


STAGE = Stage(
    kind="eval",
    code_version=CODE_VERSION,
    nodes=nodes,
    run=run,
    summary=summary,
    cost=COST,
    figures=EvalFigures,
    page=page,
    charts=charts,
)
