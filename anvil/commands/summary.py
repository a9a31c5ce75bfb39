"""What a person wants to know after an apply, from the recorded state: what is served, by whom and
whether it is the model that passed its gates; each evaluated model's composite per suite with its
deltas; every gate's value and result; the warnings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from anvil.planning.graph import stage_id
from anvil.planning.record import StageRecord
from anvil.planning.standing import Standing, State
from anvil.stages import evaluate, gate, serve

if TYPE_CHECKING:
    from anvil.project import Project


def summary(project: Project, standings: dict[str, Standing]) -> dict[str, Any]:
    """Figures that are not current (a blocked evaluation's, from before) carry `stale`: when they were
    built and why they are not current."""
    records = project.state.load()
    scores: dict[str, dict[str, dict]] = {}
    gates: dict[str, list[dict]] = {}
    stale: dict[str, str] = {}
    for model in project.graph.models():
        scored, gated = stage_id("eval", model), stage_id("gate", model)
        if (record := records.get(scored)) is not None and scored in standings:
            for suite, values in evaluate.figures(record).suites.items():
                stale = {"stale": standings[scored].stale}
                scores.setdefault(suite, {})[model] = values.model_dump(mode="json") | stale
        if (record := records.get(gated)) is not None and gated in standings:
            gates[model] = gate.checked(project.store.artifact(record.fingerprint))
            stale[model] = standings[gated].stale
    return {
        "served": served(project, records, gates, standings),
        "scores": scores,
        "gates": gates,
        "stale_gates": stale,
        "warnings": {sid: s.reason for sid, s in standings.items() if s.state is State.WARNED and s.current},
    }


def served(
    project: Project, records: dict[str, StageRecord], gates: dict[str, list[dict]], standings: dict[str, Standing]
) -> dict[str, Any] | None:
    """The recorded server as it stands (probed): `problem`, why it is not this project's live server;
    `current`, whether it serves the model as now built (else `why` not); the gates of the model as now
    built (`gates`: each model's, as `summary` read them)."""
    record, standing = records.get("serve"), standings.get("serve")
    if record is None or standing is None:
        return None
    model = record.config.get("model")
    m = serve.served(record)
    checked = gates.get(model, []) if isinstance(model, str) else []
    return {
        "model": model,
        "url": m.url,
        "name": m.model,
        "since": record.started,
        "problem": standing.reason if standing.state in (State.DOWN, State.FOREIGN) else None,
        "foreign": standing.state is State.FOREIGN,
        "current": standing.current,
        "why": standing.reason,
        "gates_passed": sum(bool(g["passed"]) for g in checked),
        "gates": len(checked),
    }


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
        today = f"failed {failed} of {gates} gates (not promoted)" if failed else f"is not served ({served['why']})"
        today = f"the {model} built since {today}"
        return f"Still serving the {model} started {since} {where}; {today}."
    passed = f"; it passed {served['gates_passed']} of {gates} gates" if gates else ""
    return f"Serving {model} {where}{passed}."
