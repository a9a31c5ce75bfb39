"""The one blocking rule, on a toy graph: whatever needs a stage whose outcome is `failed` is blocked,
in the planner (a recorded failure) and in the executor (a failure during this apply).

    data -> gate -> serve -> after
         \\-> other
"""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel

from anvil.executor import execute, new_record
from anvil.planning.graph import Graph, Node
from anvil.planning.plan import Act, Held, make_plan
from anvil.planning.record import Outcome
from anvil.stages.stage import Result
from anvil.state.hashing import StatCache
from anvil.state.project_state import ProjectState
from anvil.state.store import Store


class Cfg(BaseModel):
    v: int = 0


def toy() -> Graph:
    nodes = [
        Node("data", "k", Cfg()),
        Node("gate", "k", Cfg(), needs={"scores": "data"}),
        Node("serve", "k", Cfg(), needs={"model": "data", "gate": "gate"}),
        Node("after", "k", Cfg(), needs={"served": "serve"}),
        Node("other", "k", Cfg(v=1), needs={"data": "data"}),  # its own content: never restored from another
    ]
    return Graph({n.id: n for n in nodes})


def recorded(graph: Graph, failed: set[str]) -> dict:
    plan = make_plan(graph, {}, {})
    prints = {a.stage: a.fingerprint for a in plan.actions}
    now = datetime.now(timezone.utc)
    return {
        a.stage: new_record(
            graph.nodes[a.stage],
            a.fingerprint,
            prints,
            {},
            now,
            1.0,
            {},
            Outcome.FAILED if a.stage in failed else Outcome.OK,
        )
        for a in plan.actions
    }


def test_held_rule():
    held = Held()
    held.note("gate", blocked=False, failed=True)
    assert held.why(["data", "gate"]) == "blocked: gate failed"
    held.note("serve", blocked=True, failed=False)
    assert held.why(["serve"]) == "blocked: needs serve" and held.why(["data"]) is None


def test_a_recorded_failure_blocks_its_dependents_transitively():
    graph = toy()
    records = recorded(graph, failed={"gate"})
    records.pop("serve"), records.pop("after")
    plan = make_plan(graph, records, {})
    acts = {a.stage: (a.act, a.reasons) for a in plan.actions}
    assert acts["gate"] == (Act.UP_TO_DATE, ())
    assert acts["serve"] == (Act.BLOCKED, ("blocked: gate failed",))
    assert acts["after"] == (Act.BLOCKED, ("blocked: needs serve",))
    assert acts["other"][0] is Act.UP_TO_DATE
    assert not plan.changes, "blocked stages are not changes apply could make"
    assert next(a for a in plan.actions if a.stage == "serve").line() == "! serve: blocked: gate failed"


def test_a_stale_failure_blocks_nothing():
    graph = toy()
    records = recorded(graph, failed={"gate"})
    changed = Graph({**graph.nodes, "gate": Node("gate", "k", Cfg(v=1), needs={"scores": "data"})})
    plan = make_plan(changed, records, {})
    acts = {a.stage: a.act for a in plan.actions}
    assert acts["gate"] is Act.RERUN and acts["serve"] is Act.RERUN


def test_a_failure_during_apply_blocks_what_needs_it(tmp_path):
    graph = toy()
    (tmp_path / "anvil.toml").touch()
    state = ProjectState(tmp_path / "anvil.toml")
    store = Store(tmp_path / "store", StatCache(), owner=state.id)
    ran = []

    def run(action, workdir, inputs):
        ran.append(action.stage)
        (workdir / "out").write_text(action.stage)
        return Result({"checked": 1}, Outcome.FAILED if action.stage == "gate" else Outcome.OK)

    events = []
    applied = execute(make_plan(graph, {}, {}), graph, store, state, run, lambda e, a, s: events.append((e, a.stage)))
    assert ran == ["data", "gate", "other"]
    assert applied.failed == ["gate"] and applied.blocked == ["serve", "after"]
    assert ("failed", "gate") in events and ("blocked", "serve") in events
    records = state.load()
    assert records["gate"].outcome is Outcome.FAILED and "serve" not in records
    # The next plan blocks the same stages, by the same rule, from the recorded outcome.
    acts = {a.stage: a.act for a in make_plan(graph, records, {}).actions}
    assert acts["serve"] is Act.BLOCKED and acts["after"] is Act.BLOCKED
