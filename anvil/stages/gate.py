"""gate: a model's recipe gates and its suites' per-test gates, checked against its eval results.

The result is recorded either way, with a typed outcome: `failed` when a gate is not met. A failed
gate makes `apply` exit 3 and, by the planner's one blocking rule, blocks whatever needs it: the model
is not promoted to the served model. Writes `gates.json`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anvil.errors import EXIT_GATES
from anvil.estimates.cost import Cost
from anvil.evaluation.scores import check_gates
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import Outcome, StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.evaluation import Gate
from anvil.recipe.models import Recipe
from anvil.stages import evaluate, knowledge
from anvil.stages.stage import Result, Stage, StageRun, Suites, artifact_json
from anvil.state.atomic import write_json

CODE_VERSION = 2
GATES = "gates.json"


class GateConfig(Strict):
    gates: list[Gate]


def knowledge_needs(recipe: Recipe, model: str) -> dict[str, str]:
    wanted = any(g.model == model and g.metric.startswith("knowledge.") for g in recipe.gates)
    return {"knowledge": stage_id("knowledge", model)} if wanted and recipe.eval and recipe.eval.knowledge else {}


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    if recipe.eval is None or not (recipe.eval.suites or recipe.eval.knowledge):
        return []
    scores = lambda name: {"scores": stage_id("eval", name)} if recipe.eval and recipe.eval.suites else {}  # noqa: E731
    return [
        Node(
            id=stage_id("gate", name),
            kind="gate",
            config=GateConfig(gates=[g for g in recipe.gates if g.model == name]),
            needs={**scores(name), **knowledge_needs(recipe, name)},
            code_version=CODE_VERSION,
            model=name,
        )
        for name in recipe.eval.compare
    ]


def run(ctx: StageRun[GateConfig]) -> Result:
    suites = evaluate.results_of(ctx.inputs["scores"])["suites"] if "scores" in ctx.inputs else {}
    benchmarks = knowledge.results_of(ctx.inputs["knowledge"])["benchmarks"] if "knowledge" in ctx.inputs else None
    checked = check_gates(suites, ctx.config.gates, benchmarks)
    failures = [g for g in checked if not g["passed"]]
    write_json(ctx.out / GATES, {"gates": checked})
    metrics = {"passed": not failures, "gates": len(checked), "failures": failures}
    if not failures:
        return Result(metrics)
    return Result(metrics, Outcome.FAILED, f"failed {len(failures)} of {len(checked)} gates: {_missed(failures)}")


def checked(artifact: Path) -> list[dict[str, Any]]:
    """Every gate of a built gate stage: metric, value, min, max, passed."""
    return artifact_json(artifact, GATES)["gates"]


def failure_lines(record: StageRecord) -> list[str]:
    """The seed's GATE table: metric, value, threshold."""
    return table(record.metrics.get("failures", []))


def table(gates: list[dict[str, Any]], marked: bool = False, width: int = 78) -> list[str]:
    """Gates as rows of metric, value and threshold, the metrics in one column (`marked`: a ✓ or ✗ first);
    a metric too long for the column is printed whole on its own line, its figures on the next."""
    bounds = [f">= {g['min']:g}" if g["min"] is not None else f"<= {g['max']:g}" for g in gates]
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
    failures, total = record.metrics.get("failures", []), record.metrics.get("gates", 0)
    if record.outcome is not Outcome.FAILED:
        return f"passed {total} gate{'s' if total > 1 else ''}" if total else "no gates"
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
)
