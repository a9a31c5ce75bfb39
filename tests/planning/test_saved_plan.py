"""Saved plans (`plan -out`, `apply plan.json`) and `--exclude`: the plan you read is the plan that runs."""

from __future__ import annotations

import json

import pytest

from anvil.errors import AnvilError
from anvil.planning.plan import Act, make_plan
from anvil.planning.saved import differences, parse, to_saved
from tests.commands.test_cli import anvil
from tests.planning.test_plan import FILES, acts, applied, graph_of

REQUEST = {"targets": [], "replace": [], "exclude": []}


def test_a_saved_plan_holds_until_a_file_the_state_or_a_fingerprint_changes():
    graph = graph_of()
    plan = make_plan(graph, {}, FILES)
    saved = json.loads(json.dumps(to_saved(plan, "anvil.toml", {}, REQUEST)))
    assert differences(saved, make_plan(graph, {}, FILES), {}) == []
    edited = {**FILES, "data/a.jsonl": "a2"}
    changed = differences(saved, make_plan(graph, {}, edited), {})
    assert changed[0] == "data/a.jsonl: changed"
    assert any(line.startswith("dataset.behavioral: planned create of") for line in changed)
    records = applied(graph, plan)
    assert "dataset.domain: recorded since (another apply, `down` or a restore ran)" in differences(
        saved, make_plan(graph, records, FILES), records
    )


def test_exclude_leaves_out_a_stage_and_what_needs_it_but_not_the_report():
    graph = graph_of()
    plan = make_plan(graph, {}, FILES, exclude={"v1.train"})
    stages = set(acts(plan))
    assert "v1.train" not in stages and "v1.fuse" not in stages and "v2.train" not in stages
    assert {"dataset.domain", "dataset.behavioral", "base.source"} <= stages
    assert all(act is Act.CREATE for act in acts(plan).values())


@pytest.mark.parametrize(
    "text, says",
    [
        ("{", "not JSON"),
        ('{"format": "terraform"}', "not a saved plan"),
        ('{"format": "anvil-plan", "version": 9}', "saved plan version 9"),
        ('{"format": "anvil-plan", "version": 1, "recipe": "a.toml"}', "request: field required"),
    ],
)
def test_a_file_that_is_not_a_saved_plan_is_one_clear_error(text, says):
    with pytest.raises(AnvilError, match=says):
        parse(text, "plan.json")


def test_apply_runs_a_saved_plan_once_and_refuses_it_when_stale(data_dir):
    saved = anvil("plan", "--exclude", "behavioral", "-out", "plan.json")
    assert saved.returncode == 0 and "Saved the plan to plan.json" in saved.stdout
    assert "dataset.behavioral" not in saved.stdout
    ran = anvil("apply", "plan.json")
    assert ran.returncode == 0 and "✓ dataset.domain" in ran.stdout and "dataset.behavioral" not in ran.stdout
    again = anvil("apply", "plan.json")
    assert again.returncode == 1 and "the saved plan is stale" in again.stderr
    assert "dataset.domain: recorded since" in again.stderr and "Traceback" not in again.stderr
    anvil("plan", "-out", "plan.json")
    (data_dir / "data" / "a.jsonl").write_text((data_dir / "data" / "a.jsonl").read_text() + "\n")
    stale = anvil("apply", "plan.json")
    assert stale.returncode == 1 and "data/a.jsonl: changed" in stale.stderr
    rows = {r["stage"]: r for r in json.loads(anvil("status", "--json").stdout)}
    assert not rows["dataset.behavioral"]["built"], "a refused plan runs nothing"
    mixed = anvil("apply", "plan.json", "--target", "domain")
    assert mixed.returncode == 1 and "carries its own --target" in mixed.stderr


def _tampered(path: tuple, value):
    graph = graph_of()
    saved = json.loads(json.dumps(to_saved(make_plan(graph, {}, FILES), "anvil.toml", {}, REQUEST)))
    node = saved
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return json.dumps(saved)


@pytest.mark.parametrize(
    "path, value, says",
    [
        (("plan", "actions", 0, "stage"), ["a"], "plan.actions.0.stage: input should be a valid string"),
        (("plan", "actions", 0, "fingerprint"), 7, "plan.actions.0.fingerprint"),
        (("plan", "actions"), {"a": 1}, "plan.actions: input should be a valid list"),
        (("files",), {"data/a.jsonl": 3}, "files.data/a.jsonl"),
        (("state",), ["x"], "state: input should be a valid dictionary"),
        (("request", "targets"), "v1", "request.targets"),
        (("request", "targetz"), [], "request.targetz: extra inputs are not permitted"),
        (("recipe",), "", "recipe: string should have at least 1 character"),
    ],
)
def test_a_tampered_saved_plan_is_one_error_naming_the_field(path, value, says):
    with pytest.raises(AnvilError, match=says.replace(".", r"\.")) as e:
        parse(_tampered(path, value), "plan.json")
    assert "run `anvil plan -out plan.json` again" in str(e.value)


def test_a_saved_plan_is_known_by_its_content_whatever_its_name(data_dir):
    saved = anvil("plan", "--exclude", "behavioral", "-out", "tfplan")
    assert saved.returncode == 0
    ran = anvil("apply", "tfplan")
    assert ran.returncode == 0 and "✓ dataset.domain" in ran.stdout, ran.stderr
    own = json.loads((data_dir / "tfplan").read_text()) | {"recipe": str(data_dir / "tfplan")}
    (data_dir / "loop").write_text(json.dumps(own))
    looped = anvil("apply", "loop")
    assert looped.returncode == 1 and "tfplan is a saved plan, not a recipe" in looped.stderr
