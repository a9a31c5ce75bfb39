"""gate: a model's recipe gates and its suites' per-test gates, checked against its eval results.

The result is recorded either way; a failed gate makes `apply` exit non-zero and keeps the model from
being promoted to the served model (the planner blocks whatever needs a failed gate)."""

from __future__ import annotations

import json
from typing import Any

from anvil.planning.graph import Node
from anvil.recipe.models import Recipe
from anvil.stages.stage import Stage, StageContext
from anvil.state.atomic import write_json

CODE_VERSION = 1


def knowledge_needs(recipe: Recipe, model: str) -> tuple[str, ...]:
    wanted = any(g.model == model and g.metric.startswith("knowledge.") for g in recipe.gates)
    return (f"{model}.knowledge",) if wanted and recipe.eval.knowledge else ()


def nodes(recipe: Recipe) -> list[Node]:
    if recipe.eval is None or not recipe.eval.suites:
        return []
    return [
        Node(
            id=f"{name}.gate",
            kind="gate",
            config={"gates": [g.model_dump(mode="json") for g in recipe.gates if g.model == name]},
            needs=(f"{name}.eval", *knowledge_needs(recipe, name)),
            code_version=CODE_VERSION,
            model=name,
        )
        for name in recipe.eval.compare
    ]


def run(ctx: StageContext) -> dict[str, Any]:
    from anvil.evaluation.scores import check_gates

    results = json.loads((ctx.inputs[ctx.node.needs[0]] / "results.json").read_text())
    gates = [g for g in ctx.loaded.recipe.gates if g.model == ctx.node.model]
    checked = check_gates(results["suites"], gates)
    failures = [g for g in checked if not g["passed"]]
    write_json(ctx.workdir / "gates.json", {"model": ctx.node.model, "gates": checked})
    return {"passed": not failures, "gates": len(checked), "failures": failures}


def failure_lines(record_metrics: dict[str, Any]) -> list[str]:
    """The seed's GATE table: metric, value, threshold."""
    lines = []
    for f in record_metrics.get("failures", []):
        bound = f">= {f['min']}" if f["min"] is not None else f"<= {f['max']}"
        value = "missing" if f["value"] is None else f"{f['value']:.2f}"
        lines.append(f"{f['metric']:45s} {value:>8s}   needs {bound}")
    return lines


STAGE = Stage(kind="gate", code_version=CODE_VERSION, nodes=nodes, run=run)
