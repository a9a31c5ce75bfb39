"""Projects sharing one store: each keeps its own state and lock, so none orphans, stops or collects
another's work, while artifacts built by one are restored by the other instead of rebuilt."""

from __future__ import annotations

import shutil
import sys
import time
from datetime import datetime, timezone

from anvil.backends import process
from anvil.planning.plan import Act
from anvil.project import open_project
from tests.conftest import DATA_ONLY, stage_record
from tests.test_executor import Recorder, apply_fake

WHERE = {"host": "127.0.0.1", "port": 1, "url": "http://127.0.0.1:1", "model": "v1"}  # a server record's address


def two_projects(project_dir, monkeypatch, tmp_path_factory):
    """The fixture's data-only recipe, and a copy in another folder that mixes differently; one store."""
    store = tmp_path_factory.mktemp("shared")
    monkeypatch.setenv("ANVIL_STORE", str(store))
    (project_dir / "anvil.toml").write_text(DATA_ONLY)
    other = tmp_path_factory.mktemp("other")
    shutil.copytree(project_dir / "data", other / "data")
    (other / "anvil.toml").write_text(DATA_ONLY.replace("count = 6", "count = 5"))
    return project_dir / "anvil.toml", other / "anvil.toml", store


def test_a_second_project_restores_what_the_first_built(project_dir, monkeypatch, tmp_path_factory):
    first, second, _ = two_projects(project_dir, monkeypatch, tmp_path_factory)
    assert apply_fake(open_project(first)).ran == ["dataset.domain", "dataset.behavioral"]
    plan = open_project(second).plan()
    assert {a.stage: a.act for a in plan.actions} == {"dataset.domain": Act.RESTORE, "dataset.behavioral": Act.CREATE}
    assert apply_fake(open_project(second)).ran == ["dataset.behavioral"]


def test_what_another_project_committed_after_the_plan_is_restored_not_built_again(
    project_dir, monkeypatch, tmp_path_factory
):
    first, second, store = two_projects(project_dir, monkeypatch, tmp_path_factory)
    later = open_project(second)
    plan = later.plan()  # made before the first project built the dataset they share
    assert {a.stage: a.act for a in plan.actions}["dataset.domain"] is Act.CREATE
    apply_fake(open_project(first))
    shared = open_project(first).state.load()["dataset.domain"].fingerprint
    committed = (store / "artifacts" / shared).stat().st_ino
    run = Recorder()
    later.apply(plan, run_stage=run)
    assert run.ran == ["dataset.behavioral"], "looked up again under the claim"
    assert (store / "artifacts" / shared).stat().st_ino == committed, "a committed artifact is never replaced"


def test_projects_never_orphan_or_collect_each_others_work(project_dir, monkeypatch, tmp_path_factory):
    first, second, store = two_projects(project_dir, monkeypatch, tmp_path_factory)
    apply_fake(open_project(first))
    apply_fake(open_project(second))
    for recipe in (first, second):
        plan = open_project(recipe).plan()
        assert not plan.changes and not any(a.act is Act.ORPHANED for a in plan.actions)
    assert open_project(first).gc(dry_run=True) == [], "the other project's artifacts are referenced"
    # The first project changes its mix: only its own superseded artifact is garbage.
    first.write_text(first.read_text().replace("count = 6", "count = 4"))
    project = open_project(first)
    old = project.state.load()["dataset.behavioral"].fingerprint
    apply_fake(project)
    assert [fp for fp, _ in open_project(first).gc(dry_run=False)] == [old]
    assert not open_project(second).plan().changes, "the second project lost nothing"


def test_two_recipes_in_one_folder_keep_separate_state(project_dir):
    (project_dir / "anvil.toml").write_text(DATA_ONLY)
    (project_dir / "other.toml").write_text(DATA_ONLY.replace("count = 6", "count = 5"))
    one, two = open_project("anvil.toml"), open_project("other.toml")
    assert one.state.file != two.state.file and one.store.root == two.store.root
    apply_fake(one)
    apply_fake(two, Recorder())
    assert not open_project("anvil.toml").plan().changes and not open_project("other.toml").plan().changes


def test_down_stops_only_the_projects_own_server(project_dir, monkeypatch, tmp_path_factory):
    first, second, _ = two_projects(project_dir, monkeypatch, tmp_path_factory)
    apply_fake(open_project(first))
    theirs = open_project(second)
    # A stand-in for the server `apply` leaves running, recorded in the second project's state.
    child = process.spawn([sys.executable, "-c", "import time; time.sleep(60)"], None, tethered=False)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    theirs.state.save(
        {
            "serve": stage_record(
                "serve", "serve", started=now, metrics={"pid": child.pid, "process": child.owned.to_json()} | WHERE
            )
        }
    )
    try:
        assert open_project(first).down() == []
        assert process.is_ours(child.owned), "another project's server is not stopped"
        assert open_project(second).down() == ["serve"]
        deadline = time.monotonic() + 10
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.poll() is not None
    finally:
        child.stop()


def test_a_copied_project_forgets_the_originals_server_without_stopping_it(project_dir, tmp_path_factory):
    (project_dir / "anvil.toml").write_text(DATA_ONLY)
    original = open_project(project_dir / "anvil.toml")
    child = process.spawn([sys.executable, "-c", "import time; time.sleep(60)"], None, tethered=False)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    metrics = {"pid": child.pid, "process": child.owned.to_json(), "project": original.state.id} | WHERE
    original.state.save({"serve": stage_record("serve", "serve", started=now, metrics=metrics)})
    copy = tmp_path_factory.mktemp("copy") / "project"
    shutil.copytree(project_dir, copy)
    try:
        copied = open_project(copy / "anvil.toml")
        assert copied.down() == [] and copied.forgotten == ["serve"]
        assert process.is_ours(child.owned), "the original's server still runs"
        assert open_project(project_dir / "anvil.toml").down() == ["serve"]
    finally:
        child.stop()


def test_gc_clears_the_scratch_of_stages_no_recipe_has(project_dir):
    """A stage stopped half-way leaves resumable work in the store's scratch; once no recipe has that
    stage, gc removes it (and leaves the scratch of current stages alone)."""
    (project_dir / "anvil.toml").write_text(DATA_ONLY)
    project = open_project("anvil.toml")
    apply_fake(project)
    current = project.state.load()["dataset.domain"].fingerprint
    for fp in ("0" * 64, current):
        project.store.scratch(fp).mkdir(parents=True)
        (project.store.scratch(fp) / "checkpoint").write_text("x")
    assert [fp for fp, _ in open_project("anvil.toml").gc(dry_run=False)] == ["0" * 64]
    assert project.store.scratch(current).exists() and not project.store.scratch("0" * 64).exists()
