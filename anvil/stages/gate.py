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
from anvil.evaluation.results import BenchmarkScores, SuiteScores
from anvil.evaluation.scores import check_gates
from anvil.methods.grpo import JUDGE
from anvil.methods.rewards import Grpo
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import Outcome, StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.evaluation import Gate
from anvil.recipe.models import Recipe
from anvil.stages import evaluate, knowledge, train
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
)
