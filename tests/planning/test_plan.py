"""The pure planner on the real stage graph of a recipe, with every stage made buildable. No I/O."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest
import tomli

from anvil.executor import new_record
from anvil.planning.graph import Graph
from anvil.planning.plan import Act, Plan, make_plan
from anvil.recipe.models import Recipe
from anvil.stages.registry import build_graph
from tests.conftest import LINEAGE

FILES = {"data/domain.jsonl": "d1", "data/a.jsonl": "a1", "data/b.jsonl": "b1"}


def graph_of(text: str = LINEAGE) -> Graph:
    graph = build_graph(Recipe.model_validate(tomli.loads(text)))
    return Graph({k: dataclasses.replace(n, available=True) for k, n in graph.nodes.items()})


def applied(graph: Graph, plan: Plan, files=FILES) -> dict:
    """The state after applying `plan` successfully."""
    prints = {a.stage: a.fingerprint for a in plan.actions}
    now = datetime.now(timezone.utc)
    return {
        a.stage: new_record(graph.nodes[a.stage], a.fingerprint, prints, files, now, 1.0, {})
        for a in plan.actions
        if a.stage in graph.nodes
    }


def acts(plan: Plan) -> dict[str, Act]:
    return {a.stage: a.act for a in plan.actions}


def reasons(plan: Plan, stage: str) -> tuple[str, ...]:
    return next(a.reasons for a in plan.actions if a.stage == stage)


def built(text: str = LINEAGE):
    graph = graph_of(text)
    plan = make_plan(graph, {}, FILES)
    records = applied(graph, plan)
    return records, {}


def test_fresh_plan_creates_everything_in_dependency_order():
    plan = make_plan(graph_of(), {}, FILES)
    order = [a.stage for a in plan.actions]
    assert set(acts(plan).values()) == {Act.CREATE}
    assert order.index("dataset.domain") < order.index("v1.train") < order.index("v1.fuse") < order.index("v2.train")
    assert order.index("base.source") < order.index("v1.train")


def test_applied_plan_has_nothing_to_do():
    records, drifted = built()
    plan = make_plan(graph_of(), records, FILES, drifted=drifted)
    assert set(acts(plan).values()) == {Act.UP_TO_DATE} and not plan.changes


def test_changing_v2_touches_nothing_of_v1():
    records, drifted = built()
    plan = make_plan(
        graph_of(LINEAGE.replace("learning_rate = 2e-05 }\n\n[datasets", "learning_rate = 3e-05 }\n\n[datasets")),
        records,
        FILES,
        drifted=drifted,
    )
    # The report shows every stage: it is rebuilt whenever one changes.
    assert {s for s, a in acts(plan).items() if a is not Act.UP_TO_DATE} == {"v2.train", "v2.fuse", "report"}
    assert reasons(plan, "v2.train") == ("train.learning_rate 2e-05 -> 3e-05",)
    assert reasons(plan, "v2.fuse") == ("input v2.train changed",)
    assert (
        next(a for a in plan.actions if a.stage == "v2.train").line()
        == "~ v2.train: train.learning_rate 2e-05 -> 3e-05"
    )


def test_changing_v1_cascades_to_v2():
    records, drifted = built()
    text = LINEAGE.replace("lora = { rank = 4, last_layers = 2 }", "lora = { rank = 8, last_layers = 2 }", 1)
    plan = make_plan(graph_of(text), records, FILES, drifted=drifted)
    changed = {s for s, a in acts(plan).items() if a is Act.RERUN}
    assert changed == {"v1.train", "v1.fuse", "v2.train", "v2.fuse", "report"}
    assert reasons(plan, "v1.train") == ("lora.rank 4 -> 8",)
    assert reasons(plan, "v2.train") == ("input v1.fuse changed",)


def test_a_changed_file_names_the_file():
    records, drifted = built()
    plan = make_plan(graph_of(), records, {**FILES, "data/a.jsonl": "a2"}, drifted=drifted)
    assert reasons(plan, "dataset.behavioral") == ("data/a.jsonl changed",)
    assert acts(plan)["dataset.domain"] is Act.UP_TO_DATE
    assert acts(plan)["v2.train"] is Act.RERUN and acts(plan)["v1.train"] is Act.UP_TO_DATE


def test_reverting_restores_from_the_run_cache():
    graph = graph_of()
    first = make_plan(graph, {}, FILES)
    records = applied(graph, first)
    cache = {a.fingerprint for a in first.actions}
    changed = graph_of(LINEAGE.replace("valid_fraction = 0.25", "valid_fraction = 0.5"))
    second = make_plan(changed, records, FILES, drifted={}, cached=cache.__contains__)
    records = {**records, **applied(changed, second)}
    cache |= {a.fingerprint for a in second.actions}
    back = make_plan(graph, records, FILES, drifted={}, cached=cache.__contains__)
    assert acts(back)["dataset.behavioral"] is Act.RESTORE
    assert reasons(back, "dataset.behavioral")[0] == "valid_fraction 0.5 -> 0.25"
    assert acts(back)["v2.train"] is Act.RESTORE


def test_removed_model_is_orphaned():
    records, drifted = built()
    text = LINEAGE[: LINEAGE.index("[models.v2]")] + LINEAGE[LINEAGE.index("[datasets.domain]") :]
    plan = make_plan(graph_of(text), records, FILES, drifted=drifted)
    assert {s for s, a in acts(plan).items() if a is Act.ORPHANED} == {"v2.train", "v2.fuse"}


def test_target_limits_to_the_node_and_what_it_needs():
    graph = graph_of()
    plan = make_plan(graph, {}, FILES, targets=graph.select("v1"))
    assert set(acts(plan)) == {"dataset.domain", "base.source", "v1.train", "v1.fuse"}


def test_replace_forces_one_stage():
    records, drifted = built()
    plan = make_plan(graph_of(), records, FILES, drifted=drifted, replace=["v1.train"])
    assert {s for s, a in acts(plan).items() if a.is_change} == {"v1.train"}
    assert reasons(plan, "v1.train") == ("forced by --replace",)
    with pytest.raises(ValueError, match="--replace v7.train: no such stage"):
        make_plan(graph_of(), records, FILES, replace=["v7.train"])


def test_unavailable_stages_block_their_dependents_and_are_not_changes():
    graph = graph_of()
    graph.nodes["v1.train"] = dataclasses.replace(graph.nodes["v1.train"], available=False)
    plan = make_plan(graph, {}, FILES)
    assert acts(plan)["v1.train"] is Act.UNAVAILABLE and acts(plan)["v2.fuse"] is Act.UNAVAILABLE
    assert reasons(plan, "v1.fuse") == ("not available: needs v1.train",)
    assert {a.stage for a in plan.changes} == {"dataset.domain", "dataset.behavioral", "base.source", "report"}


def test_missing_or_edited_artifact_reruns():
    records, drifted = built()
    plan = make_plan(graph_of(), records, FILES, drifted={"v1.fuse": "artifact missing or modified outside anvil"})
    assert reasons(plan, "v1.fuse") == ("artifact missing or modified outside anvil",)
    assert acts(plan)["v2.train"] is Act.UP_TO_DATE  # same inputs, so same fingerprint: only v1.fuse is rebuilt


def test_code_version_change_is_a_reason():
    records, drifted = built()
    graph = graph_of()
    old = graph.nodes["dataset.domain"].code_version
    graph.nodes["dataset.domain"] = dataclasses.replace(graph.nodes["dataset.domain"], code_version=old + 1)
    plan = make_plan(graph, records, FILES, drifted=drifted)
    assert reasons(plan, "dataset.domain") == (f"stage code version {old} -> {old + 1}",)


def test_plan_json_is_serialisable():
    import json

    plan = make_plan(graph_of(), {}, FILES)
    data = json.loads(json.dumps(plan.to_json()))
    assert data["changes"] is True and data["summary"]["create"] == 8
    assert data["actions"][0] == {
        "stage": "dataset.domain",
        "kind": "dataset",
        "act": "create",
        "fingerprint": plan.actions[0].fingerprint,
        "reasons": ["create"],
        "needs": [],
        "detail": "",
        "brief": [],
        "estimate": None,
    }


def test_identity_comes_from_content_not_from_how_a_path_is_spelt():
    """A recipe in `recipes/` reads `../data/x`, the same one at the root `data/x`: one artifact each."""
    moved = LINEAGE.replace('"data/', '"../data/')
    assert moved != LINEAGE
    moved_files = {"../" + path: digest for path, digest in FILES.items()}
    here, there = make_plan(graph_of(), {}, FILES), make_plan(graph_of(moved), {}, moved_files)
    assert [a.fingerprint for a in here.actions] == [a.fingerprint for a in there.actions]
    edited = make_plan(graph_of(moved), {}, moved_files | {"../data/domain.jsonl": "d2"})
    assert {a.stage for a in edited.actions if a.fingerprint not in {b.fingerprint for b in here.actions}} >= {
        "dataset.domain",
        "v1.train",
        "v2.train",
    }


SUITE_TESTS = {f"test_{i:02d}_{'x' * 30}": {"turns": [f"Prompt {i} " * 20], "rubric": "r" * 200} for i in range(32)}


def test_a_whole_collection_added_is_one_reason_and_lines_stay_short():
    """Adding a 32-test suite is one brief reason per stage; every field stays in the full reasons."""
    from anvil.planning.graph import Node
    from anvil.planning.reasons import brief_reasons, changes, diff_reasons
    from anvil.planning.record import StageRecord
    from anvil.recipe.base import Strict

    class Config(Strict):
        suites: dict[str, dict[str, dict]]
        sources: list[dict]

    before = Config(suites={"small": {"hi": {"turns": ["hi"]}}}, sources=[{"count": i} for i in range(6)])
    after = before.model_copy(
        update={"suites": before.suites | {"behavioral": SUITE_TESTS}, "sources": [{"count": i + 1} for i in range(6)]}
    )
    node = Node("x.transcripts", "transcripts", after)
    record = new_record(Node("x.transcripts", "transcripts", before), "f", {}, {}, datetime.now(timezone.utc), 1, {})
    assert isinstance(record, StageRecord)
    full = diff_reasons(node, record, {}, {})
    assert len(full) == 6 + 64
    brief = tuple(brief_reasons(node, record, changes(node, record, {}, {})))
    assert brief == ("suites.behavioral added (32 entries)", "sources: 6 changed")
    from anvil.planning.plan import Act, Action

    action = Action("x.transcripts", "transcripts", Act.RERUN, "f", tuple(full), (), "", brief)
    assert len(action.line()) < 200 and len(action.line(verbose=True)) > 5000


def test_many_scattered_changes_are_capped():
    from anvil.planning.graph import Node
    from anvil.planning.reasons import BRIEF, brief_reasons, changes
    from anvil.recipe.base import Strict

    class Config(Strict):
        a: int = 0
        b: int = 0
        c: int = 0
        d: int = 0
        e: int = 0
        f: int = 0

    record = new_record(Node("s", "s", Config()), "f", {}, {}, datetime.now(timezone.utc), 1, {})
    node = Node("s", "s", Config(a=1, b=1, c=1, d=1, e=1, f=1))
    brief = brief_reasons(node, record, changes(node, record, {}, {}))
    assert len(brief) == BRIEF and brief[-1] == "and 3 more" and brief[0] == "a 0 -> 1"
