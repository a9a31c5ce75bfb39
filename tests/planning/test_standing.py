"""Where a stage stands, on a toy graph: the one answer status, plan, apply's summary and exit code,
`eval show` and the page give.

    judge -> scores -> gate -> serve
"""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel

from anvil.executor import new_record
from anvil.planning.graph import Graph, Node
from anvil.planning.plan import make_plan
from anvil.planning.record import Outcome
from anvil.planning.standing import State, standings


class Cfg(BaseModel):
    v: int = 0


def toy() -> Graph:
    nodes = [
        Node("judge", "calibration", Cfg()),
        Node("scores", "eval", Cfg(), needs={"judge": "judge"}),
        Node("gate", "gate", Cfg(), needs={"scores": "scores"}),
        Node("serve", "serve", Cfg(), needs={"gate": "gate"}, resource=True),
    ]
    return Graph({n.id: n for n in nodes})


def built(graph: Graph, outcomes: dict[str, Outcome] | None = None, reasons: dict[str, str] | None = None) -> dict:
    plan = make_plan(graph, {}, {})
    prints = {a.stage: a.fingerprint for a in plan.actions}
    now = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    outcomes, reasons = outcomes or {}, reasons or {}
    return {
        a.stage: new_record(
            graph.nodes[a.stage],
            a.fingerprint,
            prints,
            {},
            now,
            1.0,
            {},
            outcomes.get(a.stage, Outcome.OK),
            reasons.get(a.stage, ""),
        )
        for a in plan.actions
    }


def test_everything_built_and_served_is_current():
    graph = toy()
    found = standings(graph, built(graph), {})
    assert {sid: s.state for sid, s in found.items()} == {
        "judge": State.BUILT,
        "scores": State.BUILT,
        "gate": State.BUILT,
        "serve": State.UP,
    }
    assert all(s.current and not s.stale for s in found.values())


def test_after_a_failed_calibration_older_scores_and_gates_are_blocked_not_current():
    graph = toy()
    records = built(graph)
    failed = built(Graph({"judge": Node("judge", "calibration", Cfg(v=1))}), {"judge": Outcome.FAILED}, {"judge": "k"})
    records["judge"] = failed["judge"]  # a new judge, which failed: the scores were made by the old one
    found = standings(graph, records, {})
    assert found["judge"].state is State.FAILED and found["judge"].current and found["judge"].reason == "k"
    assert found["scores"].state is State.BLOCKED and not found["scores"].current
    assert found["scores"].stale == "as built 2026-12-01 10:00, not current: blocked: judge failed"
    assert found["gate"].state is State.BLOCKED and found["gate"].reason == "blocked: needs scores"
    assert found["serve"].state is State.UP and not found["serve"].current, "it runs, but serves the old model"


def test_a_failed_stage_of_any_kind_carries_its_reason():
    graph = toy()
    found = standings(graph, built(graph, {"scores": Outcome.FAILED}, {"scores": "parity differs"}), {})
    assert (found["scores"].state, found["scores"].reason) == (State.FAILED, "parity differs")
    assert found["gate"].state is State.BLOCKED


def test_a_warned_server_is_warned_with_its_reason_and_a_record_without_one_gets_its_warnings():
    graph = toy()
    records = built(graph, {"serve": Outcome.WARNED}, {"serve": "KV answers differ"})
    assert (standings(graph, records, {})["serve"].state, standings(graph, records, {})["serve"].reason) == (
        State.WARNED,
        "KV answers differ",
    )
    old = records["serve"].model_copy(update={"reason": "", "metrics": {"warnings": ["agrees on 60%"]}})
    assert standings(graph, {**records, "serve": old}, {})["serve"].reason == "agrees on 60%"


def test_a_server_is_up_only_when_probed_so():
    graph = toy()
    records = built(graph)
    dead = standings(graph, records, {"serve": "server process 12 is not running"})["serve"]
    assert dead.state is State.DOWN and dead.reason == "server process 12 is not running"
    theirs = standings(graph, records, {"serve": "started by another project"}, foreign={"serve"})["serve"]
    assert theirs.state is State.FOREIGN
    records.pop("serve")  # after `anvil down`
    assert standings(graph, records, {})["serve"].state is State.DOWN


def test_a_missing_artifact_and_a_changed_input():
    graph = toy()
    records = built(graph)
    assert standings(graph, records, {"scores": "artifact missing"})["scores"].state is State.MISSING
    records["judge"] = built(Graph({"judge": Node("judge", "calibration", Cfg(v=2))}))["judge"]
    found = standings(graph, records, {})
    assert found["scores"].state is State.BUILT and not found["scores"].current
    assert found["scores"].reason == "judge changed since" and not found["gate"].current


def test_a_failure_from_older_inputs_blocks_nothing_as_in_the_plan():
    graph = toy()
    records = built(graph, {"gate": Outcome.FAILED}, {"gate": "failed 1 of 1 gates"})
    records["scores"] = built(Graph({"scores": Node("scores", "eval", Cfg(v=3))}))["scores"]  # scored again
    found = standings(graph, records, {})
    assert found["gate"].state is State.FAILED and not found["gate"].current
    assert found["serve"].state is State.UP and "blocked" not in found["serve"].reason
