"""What a person wants to know after an apply, from the recorded state: what is served, by whom and
whether it is the model that passed its gates; each evaluated model's composite per suite with its
deltas; every gate's value and result; the warnings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from anvil.planning.record import Outcome, StageRecord
from anvil.stages import gate

if TYPE_CHECKING:
    from anvil.project import Project


def summary(project: Project) -> dict[str, Any]:
    records = project.state.load()
    scores: dict[str, dict[str, dict]] = {}
    gates: dict[str, list[dict]] = {}
    for node in project.graph.order():
        record = records.get(node.id)
        if record is None or node.model is None:
            continue
        if node.kind == "eval":
            for suite, values in record.metrics.get("suites", {}).items():
                scores.setdefault(suite, {})[node.model] = values
        elif node.kind == "gate":
            gates[node.model] = gate.checked(project.store.artifact(record.fingerprint))
    return {
        "served": served(project, records, gates),
        "scores": scores,
        "gates": gates,
        "warnings": {sid: r.metrics.get("warnings", []) for sid, r in records.items()
                     if r.outcome is Outcome.WARNED and sid in project.graph.nodes},
    }  # fmt: skip


def served(project: Project, records: dict[str, StageRecord], gates: dict[str, list[dict]]) -> dict[str, Any] | None:
    """The recorded server as it is now: probed (`problem`: why it is not this project's live server),
    whether it serves the model as now built (`current`; else what it serves is older), and the gates of
    the model as now built (`gates`: each model's, as `summary` read them)."""
    record = records.get("serve")
    if record is None:
        return None
    model = record.config.get("model")
    m = record.metrics
    moved = [need for need, print_ in record.inputs.items() if need in records and records[need].fingerprint != print_]
    checked = gates.get(model, []) if isinstance(model, str) else []
    return {"model": model, "url": m.get("url"), "name": m.get("model"), "since": record.started,
            "problem": project.drift(record), "foreign": project.foreign(record), "current": not moved,
            "gates_passed": sum(bool(g["passed"]) for g in checked), "gates": len(checked)}  # fmt: skip


def serving_line(served: dict[str, Any] | None) -> str:
    """One sentence on what is served: never "serving" for a dead or foreign process, never the model as
    now built when the server holds an older one."""
    if served is None:
        return "Serving nothing."
    model, since = served["model"], str(served["since"]).replace("T", " ")[:16]
    if served["foreign"]:
        return f"Not serving: the recorded server of {model} was started by another project (left alone)."
    if served["problem"]:
        return f"Not serving {model}: {served['problem']}."
    where = f"at {served['url']}/v1 (model {served['name']!r})"
    gates = served["gates"]
    if not served["current"]:
        failed = gates - served["gates_passed"]
        today = f"failed {failed} of {gates} gates (not promoted)" if failed else "is not served yet"
        today = f"the {model} built since {today}"
        return f"Still serving the {model} started {since} {where}; {today}."
    passed = f"; it passed {served['gates_passed']} of {gates} gates" if gates else ""
    return f"Serving {model} {where}{passed}."
