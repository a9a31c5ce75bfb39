"""What follows a sweep's select is keyed by the winner's weights, not by every variant (issue 35, item
12): a variant added that does not win, or a rule changed that picks the same winner, reruns the select
and nothing after it. On a toy graph with the real planner, executor and store.

    a, b, (c) -> select (passes on its winner) -> child -> grandchild;  report observes all
"""

from __future__ import annotations

from pydantic import BaseModel

from anvil.executor import execute
from anvil.planning.graph import Graph, Node
from anvil.planning.plan import Act, make_plan
from anvil.stages.stage import Result
from anvil.state.hashing import StatCache
from anvil.state.project_state import ProjectState
from anvil.state.store import Store


class Cfg(BaseModel):
    v: int = 0
    rule: str = "best"


def graph(variants: dict[str, int], rule: str = "best") -> Graph:
    nodes = [Node(name, "variant", Cfg(v=v)) for name, v in variants.items()]
    nodes += [
        Node("select", "select", Cfg(rule=rule), needs={f"weights:{name}": name for name in variants}),
        Node("child", "k", Cfg(), needs={"parent": "select"}),
        Node("grandchild", "k", Cfg(), needs={"parent": "child"}),
    ]
    report = Node("report", "report", Cfg(), needs={n.id: n.id for n in nodes}, observer=True)
    return Graph({n.id: n for n in [*nodes, report]})


def apply(tmp_path, g: Graph, winner: str = "a") -> tuple[list[str], list[str]]:
    (tmp_path / "anvil.toml").touch()
    state = ProjectState(tmp_path / "anvil.toml")
    store = Store(tmp_path / "store", StatCache(), owner=state.id)
    ran: list[str] = []

    def run(action, workdir, inputs):
        ran.append(action.stage)
        (workdir / "out").write_text(action.stage)
        if action.stage == "select":
            return Result({"winner": winner}, passes_on=f"weights:{winner}")
        return Result({})

    applied = execute(make_plan(g, state.load(), {}), g, store, state, run)
    return ran, applied.unchanged


def test_a_variant_that_does_not_win_reruns_only_the_select(tmp_path):
    ran, _ = apply(tmp_path, graph({"a": 1, "b": 2}))
    assert ran == ["a", "b", "select", "child", "grandchild", "report"]
    state = ProjectState(tmp_path / "anvil.toml")
    assert make_plan(graph({"a": 1, "b": 2}), state.load(), {}).changes == []

    wider = graph({"a": 1, "b": 2, "c": 3})
    plan = make_plan(wider, state.load(), {})
    lines = {a.stage: a.line() for a in plan.changes}
    assert set(lines) == {"c", "select", "child", "grandchild", "report"}
    assert "known once select has run" in lines["child"], lines["child"]
    assert "known once child has run" in lines["grandchild"], lines["grandchild"]

    ran, unchanged = apply(tmp_path, wider)
    assert ran == ["c", "select", "report"] and unchanged == ["child", "grandchild"]
    assert make_plan(wider, state.load(), {}).changes == []


def test_a_rule_that_picks_the_same_winner_reruns_nothing_after_it_and_another_winner_does(tmp_path):
    apply(tmp_path, graph({"a": 1, "b": 2}))
    ran, unchanged = apply(tmp_path, graph({"a": 1, "b": 2}, rule="simplest"), winner="a")
    assert ran == ["select", "report"] and unchanged == ["child", "grandchild"]

    ran, unchanged = apply(tmp_path, graph({"a": 1, "b": 2}, rule="other"), winner="b")
    assert ran == ["select", "child", "grandchild", "report"] and unchanged == []
    state = ProjectState(tmp_path / "anvil.toml")
    assert make_plan(graph({"a": 1, "b": 2}, rule="other"), state.load(), {}).changes == []


def test_a_drifted_stage_after_a_select_is_rebuilt_although_its_key_holds(tmp_path):
    apply(tmp_path, graph({"a": 1, "b": 2}))
    state = ProjectState(tmp_path / "anvil.toml")
    wider = graph({"a": 1, "b": 2, "c": 3})
    plan = make_plan(wider, state.load(), {}, drifted={"child": "artifact missing or modified outside anvil"})
    assert {a.stage: a.act for a in plan.actions}["child"] is Act.RERUN
    store = Store(tmp_path / "store", StatCache(), owner=state.id)
    ran: list[str] = []

    def run(action, workdir, inputs):
        ran.append(action.stage)
        (workdir / "out").write_text(action.stage)
        return Result({"winner": "a"}, passes_on="weights:a") if action.stage == "select" else Result({})

    applied = execute(plan, wider, store, state, run)
    assert "child" not in applied.unchanged and applied.unchanged == ["grandchild"]
    # the child's content is in the store already: restored, not built
    assert "child" not in ran and "child" in applied.restored
