"""gate: a model's recipe gates and its suites' per-test gates, checked against its eval results.

The result is recorded either way, with a typed outcome: `failed` when a gate is not met. A failed
gate makes `apply` exit 3 and, by the planner's one blocking rule, blocks whatever needs it: the model
is not promoted to the served model. Writes `gates.json`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from anvil.errors import EXIT_GATES
from anvil.estimates.cost import Cost
from anvil.evaluation.results import BenchmarkScores, EvalResults, SuiteScores
from anvil.evaluation.scores import check_gates
from anvil.methods.grpo import JUDGE
from anvil.methods.rewards import Grpo
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import Outcome, StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.evaluation import Gate
from anvil.recipe.metrics import Metric, parse_metric
from anvil.recipe.models import Recipe
from anvil.stages import dataset, evaluate, knowledge, train
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View
from anvil.stages.stage import Recorded, Result, Stage, StageRun, Suites, artifact_json, read_figures
from anvil.state.atomic import write_json

CODE_VERSION = 2
GATES = "gates.json"


class Guard(Strict):
    """A reinforcement round's guard against reward hacking: its held-out reward against its evaluations."""

    mode: Literal["warn", "gate"]
    alpha: float


class GateConfig(Strict):
    gates: list[Gate]
    guard: Guard | None = None  # a grpo round's


def knowledge_needs(recipe: Recipe, model: str) -> dict[str, str]:
    wanted = any(g.model == model and g.metric.startswith("knowledge.") for g in recipe.gates)
    wanted = wanted or guard_of(recipe, model) is not None
    return {"knowledge": stage_id("knowledge", model)} if wanted and recipe.eval and recipe.eval.knowledge else {}


def guard_of(recipe: Recipe, model: str) -> Guard | None:
    """The guard of a trained grpo round (a swept one's variants are not gated one by one)."""
    node = recipe.models[model]
    settings = node.method_settings
    if not isinstance(settings, Grpo) or not node.trains or recipe.eval is None:
        return None
    return Guard(mode=settings.guard, alpha=recipe.eval.alpha)


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    if recipe.eval is None or not (recipe.eval.suites or recipe.eval.knowledge):
        return []
    scores = lambda name: {"scores": stage_id("eval", name)} if recipe.eval and recipe.eval.suites else {}  # noqa: E731
    return [
        Node(
            id=stage_id("gate", name),
            kind="gate",
            config=GateConfig(gates=[g for g in recipe.gates if g.model == name], guard=guard_of(recipe, name)),
            needs={**scores(name), **knowledge_needs(recipe, name), **trained(recipe, name)},
            code_version=CODE_VERSION,
            model=name,
        )
        for name in recipe.eval.compare
    ]


def trained(recipe: Recipe, model: str) -> dict[str, str]:
    return {"train": stage_id("train", model)} if guard_of(recipe, model) is not None else {}


def run(ctx: StageRun[GateConfig]) -> Result:
    suites = evaluate.results_of(ctx.inputs["scores"]).suites if "scores" in ctx.inputs else {}
    benchmarks = knowledge.results_of(ctx.inputs["knowledge"]).benchmarks if "knowledge" in ctx.inputs else None
    checked = check_gates(suites, ctx.config.gates, benchmarks)
    guard, trained, hacked = ctx.config.guard, {}, None
    if guard is not None:
        trained = train.figures(ctx.records["train"]).model_dump()
        found = (
            reward_outran_evaluation(trained, suites, benchmarks or {}, guard.alpha),
            judges_disagree(trained, guard.alpha),
        )
        hacked = "; ".join(why for why in found if why) or None
    if guard is not None and hacked is not None and guard.mode == "gate":
        checked.append(
            {
                "metric": "reward guard",
                "value": trained.get("held_out_reward_after"),  # the held-out reward
                "min": None,
                "max": None,
                "passed": False,
                "reason": hacked,
            }
        )
    failures = [g for g in checked if not g["passed"]]
    write_json(ctx.out / GATES, {"gates": checked, "reward_guard": hacked})
    metrics = Gated(
        passed=not failures, gates=len(checked), failures=failures, reward_guard=hacked, guarded=guard is not None
    )
    if failures:
        return Result.of(
            metrics, Outcome.FAILED, f"failed {len(failures)} of {len(checked)} gates: {_missed(failures)}"
        )
    if hacked is not None:
        return Result.of(metrics, Outcome.WARNED, hacked)
    return Result.of(metrics)


class Gated(Recorded):
    """Whether every gate passed, how many there were, each that failed (metric, value, min, max, reason),
    and, for a reinforcement round (`guarded`), what its reward guard found (None: nothing)."""

    passed: bool
    gates: int
    failures: list[dict[str, Any]]
    reward_guard: str | None = None
    guarded: bool = False


def figures(record: StageRecord) -> Gated:
    return read_figures(Gated, record)


def reward_outran_evaluation(
    trained: dict[str, Any], suites: Mapping[str, SuiteScores], benchmarks: Mapping[str, BenchmarkScores], alpha: float
) -> str | None:
    """Why a reinforcement round looks like it learnt its reward rather than the task: its reward on held-out
    prompts rose significantly, and none of its gated evaluations did against the parent (no suite composite,
    no knowledge benchmark significantly up). None when the reward did not rise, or an evaluation rose with it."""
    before, after, p = (trained.get(k) for k in ("held_out_reward_before", "held_out_reward_after", "held_out_p_value"))
    if before is None or after is None or p is None or not (after > before and p < alpha):
        return None
    compared = [
        (f"{name} composite", s.delta_vs_parent.significance.composite.model_dump(), 1, "")
        for name, s in suites.items()
        if s.delta_vs_parent is not None
    ]
    compared += [(name, d.model_dump(), 100, "pp") for name, b in benchmarks.items() if (d := b.delta_vs_parent)]
    moved = [
        f"{name} {scale * d['delta']:+.2f}{unit}" + (f" (p={d['p_value']:.2g})" if d.get("p_value") is not None else "")
        for name, d, scale, unit in compared
    ]
    rose = [name for name, d, _, _ in compared if d.get("significant") and d["delta"] > 0]
    if rose:
        return None
    return (
        f"the reward rose on held-out prompts ({before:.2f} -> {after:.2f}, p={p:.2g}) and no evaluation did vs "
        f"the parent ({', '.join(moved) or 'none evaluated'}): the round may have learnt its reward, not the task"
    )


def judges_disagree(trained: dict[str, Any], alpha: float) -> str | None:
    """Why a judge reward looks gamed: the judge's own held-out score rose significantly, and a panel member
    scoring the same answers did not (its rise not significant, or none). None without a panel, or when every
    member agrees."""
    judges = trained.get("held_out_judges") or {}
    combined = judges.get(JUDGE)
    rose = lambda f: f["after"] > f["before"] and f["p_value"] < alpha  # noqa: E731
    if combined is None or not rose(combined):
        return None
    dissent = [
        f"{name} {f['before']:.2f} -> {f['after']:.2f} (p={f['p_value']:.2g})"
        for name, f in judges.items()
        if name != JUDGE and not rose(f)
    ]
    if not dissent:
        return None
    return (
        f"the judge reward rose on held-out prompts ({combined['before']:.2f} -> {combined['after']:.2f} of 5, "
        f"p={combined['p_value']:.2g}) but not by every judge of the panel ({', '.join(dissent)}): the round may "
        "have learnt what one judge rewards, not the task"
    )


def checked(artifact: Path) -> list[dict[str, Any]]:
    """Every gate of a built gate stage: metric, value, min, max, passed."""
    return artifact_json(artifact, GATES)["gates"]


def failure_lines(record: StageRecord) -> list[str]:
    """The seed's GATE table: metric, value, threshold."""
    return table(figures(record).failures)


def table(gates: list[dict[str, Any]], marked: bool = False, width: int = 78) -> list[str]:
    """Gates as rows of metric, value and threshold, the metrics in one column (`marked`: a ✓ or ✗ first);
    a metric too long for the column is printed whole on its own line, its figures on the next."""
    bounds = [
        f">= {g['min']:g}"
        if g["min"] is not None
        else f"<= {g['max']:g}"
        if g["max"] is not None
        else "an evaluation that rose with it"
        for g in gates
    ]
    bounds = [f"{b} ({g['reason']})" if g.get("reason") else b for b, g in zip(bounds, gates, strict=True)]
    column = max((len(g["metric"]) for g in gates), default=0)
    fits = 2 * marked + column + len("  12345.00  needs ") + max(map(len, bounds), default=0) <= width
    lines = []
    for g, bound in zip(gates, bounds, strict=True):
        value = "missing" if g["value"] is None else f"{g['value']:.2f}"
        mark = ("✓ " if g["passed"] else "✗ ") if marked else ""
        if fits:
            lines.append(f"{mark}{g['metric']:{column}s} {value:>8s}  needs {bound}")
        else:
            lines += [f"{mark}{g['metric']}", f"{' ' * len(mark)}  {value:>8s}  needs {bound}"]
    return lines


def summary(record: StageRecord) -> str:
    """The last verdict, shown beside the gate in `plan`."""
    m = figures(record)
    failures, total, guarded = m.failures, m.gates, m.guarded
    if record.outcome is Outcome.WARNED and m.reward_guard:
        return "reward guard: the reward may have been learnt, not the task (`anvil status` says why)"
    if record.outcome is not Outcome.FAILED:
        said = f"passed {total} gate{'s' if total > 1 else ''}" if total else "no gates"
        return said + ("; reward guard: no warning" if guarded else "")
    return f"FAILED {len(failures)} of {total}: {_missed(failures[:3])}"


def _missed(failures: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{f['metric']} {'missing' if f['value'] is None else format(f['value'], '.2f')}" for f in failures
    )


def page(config: ReportConfig, view: View) -> dict[str, Any]:
    """Every evaluated model's gates with what failed, and what each round targets in its parent."""
    gates = [
        {
            "model": model,
            "state": view.states[sid],
            "gates": view.read(sid, checked),
            "failures": failures(view, model),
            "from": sid,
        }
        for model in config.evaluated
        if (sid := stage_id("gate", model)) in view.states
    ]
    rounds = [name for name, m in config.models.items() if m.dataset and m.parent and not m.variants]
    return {"gates": gates, "targets": [found for name in rounds if (found := targets(config, view, name))]}


def failures(view: View, model: str) -> list[dict[str, Any]]:
    """A model's failed gates with the test's category and the judge's rationale for its lowest run."""
    results = evaluate.scored(view, model) or EvalResults(suites={})
    rows = []
    for g in (g for g in view.read(stage_id("gate", model), checked) or [] if not g["passed"]):
        parsed = parse_metric(g["metric"]) or Metric("", "")
        scores = results.suites.get(parsed.source)
        test = scores.tests.get(parsed.name) if scores and parsed.kind == "test" else None
        runs = results.runs_of(parsed.source, parsed.name) if test else []
        worst = min(runs, key=lambda r: r.verdict.score, default=None)
        rows.append(
            {
                "metric": g["metric"],
                "test": parsed.name if test else None,
                "value": g["value"],
                "min": g["min"],
                "max": g["max"],
                "category": test.category if test else (parsed.name if parsed.kind == "category" else None),
                "from": stage_id("gate", model),
                "rationale": worst.verdict.rationale if worst else None,
            }
        )
    return rows


WEAKEST = 3  # a parent without failed gates: its lowest-scoring tests, and every high-variance one


def targets(config: ReportConfig, view: View, model: str) -> dict[str, Any] | None:
    """The seed's "what v2 targets": each failure of the parent's gates, or, when the parent failed none
    (or has no gates), its weakest tests (lowest scores, highest variance), beside the category of this
    round's data that addresses it (by its `addresses`: a suite category or a test id)."""
    m = config.models[model]
    assert m.parent is not None and m.dataset is not None
    if view.states.get(stage_id("gate", m.parent)) == "failed":
        kind, rows = "gate failures", failures(view, m.parent)
    else:
        kind, rows = "weakest tests", _weakest(view, m.parent)
    if not rows:
        return None
    categories = dataset.mix(config, view, m.dataset)["categories"]
    for row in rows:
        wanted = {row["test"], row["category"]} - {None}
        row["addressed_by"] = [c["name"] for c in categories if wanted & set(c["addresses"])]
    return {"model": model, "parent": m.parent, "kind": kind, "rows": rows}


def _weakest(view: View, model: str) -> list[dict[str, Any]]:
    """A model's lowest-scoring tests and its high-variance ones, lowest first, with the judge's rationale
    for the lowest run."""
    results = evaluate.scored(view, model) or EvalResults(suites={})
    tests = [(suite, test_id, t) for suite, s in results.suites.items() for test_id, t in s.tests.items()]
    lowest = sorted(tests, key=lambda x: x[2].mean)[:WEAKEST]
    chosen = lowest + [x for x in tests if x[2].high_variance and x not in lowest]
    rows = []
    for suite, test_id, t in sorted(chosen, key=lambda x: x[2].mean):
        worst = min(results.runs_of(suite, test_id), key=lambda r: r.verdict.score, default=None)
        reasons = (("low score", (suite, test_id, t) in lowest), ("high variance", t.high_variance))
        rows.append(
            {
                "metric": str(Metric(suite, "test", test_id)),
                "test": test_id,
                "value": t.mean,
                "std": t.std,
                "category": t.category,
                "why": ", ".join(why for why, yes in reasons if yes),
                "rationale": worst.verdict.rationale if worst else None,
                "from": stage_id("eval", model),
            }
        )
    return rows


COST = Cost(start_s=0.01)


STAGE = Stage(
    kind="gate",
    code_version=CODE_VERSION,
    nodes=nodes,
    run=run,
    summary=summary,
    in_plan=True,
    failure_exit=EXIT_GATES,
    failure_lines=failure_lines,
    failure_means="not promoted",
    cost=COST,
    figures=Gated,
    page=page,
)
