"""The executor against a real store with fake stages: run-cache, crash safety, the lock."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

from anvil.errors import StageFailed, StoreLocked
from anvil.planning.plan import Act
from anvil.project import open_project
from anvil.state.lock import store_lock


class Recorder:
    """A fake stage function: writes one file, remembers what it ran."""

    def __init__(self):
        self.ran: list[str] = []

    def __call__(self, action, workdir, inputs):
        assert all(path.is_dir() for path in inputs.values()), "inputs are committed artifacts"
        self.ran.append(action.stage)
        (workdir / "out.txt").write_text(action.fingerprint)
        return {"n": len(self.ran)}


def apply_fake(project, run=None):
    run = run or Recorder()
    project.apply(project.plan(), run_stage=run)
    return run


def test_second_apply_does_nothing(project_dir):
    project = open_project("anvil.toml")
    assert apply_fake(project).ran == [
        "dataset.domain",
        "dataset.behavioral",
        "base.source",
        "v1.train",
        "v1.fuse",
        "v2.train",
        "v2.fuse",
        "report",
    ]
    assert apply_fake(open_project("anvil.toml")).ran == []
    assert not open_project("anvil.toml").plan().changes


def test_revert_reuses_the_earlier_artifact(project_dir):
    apply_fake(open_project("anvil.toml"))
    recipe = project_dir / "anvil.toml"
    original = recipe.read_text()
    recipe.write_text(original.replace("valid_fraction = 0.25", "valid_fraction = 0.5"))
    assert apply_fake(open_project("anvil.toml")).ran == ["dataset.behavioral", "v2.train", "v2.fuse", "report"]
    recipe.write_text(original)
    project = open_project("anvil.toml")
    assert {a.stage: a.act for a in project.plan().actions}["dataset.behavioral"] is Act.RESTORE
    assert apply_fake(project).ran == []
    state = project.state.load()
    assert state["dataset.behavioral"].config["valid_fraction"] == 0.25


def test_a_failing_stage_blocks_what_needs_it_the_rest_goes_on_and_leaves_no_debris(project_dir):
    """Terraform's rule: an error stops what needs the stage, not the rest; the report still records what
    was built, and the error is raised at the end with what was applied."""

    def run(action, workdir, inputs):
        (workdir / "partial").write_text("x")
        if action.stage == "dataset.behavioral":
            raise RuntimeError("disk on fire")
        return {}

    project = open_project("anvil.toml")
    with pytest.raises(StageFailed, match="dataset.behavioral failed: RuntimeError: disk on fire") as raised:
        apply_fake(project, run)
    needs_it = project.graph.dependents({"dataset.behavioral"}) - {"report"}
    assert set(project.state.load()) == set(project.graph.nodes) - needs_it
    assert "report" in project.state.load() and "v2.train" in needs_it
    assert raised.value.applied is not None and set(raised.value.applied.blocked) == needs_it - {"dataset.behavioral"}
    assert not any((project.store.root / "tmp").iterdir())


def _apply_and_hang(recipe_dir, marker):
    os.chdir(recipe_dir)

    def run(action, workdir, inputs):
        (workdir / "half-written").write_text("x" * 1000)
        if action.stage == "dataset.behavioral":
            open(marker, "w").close()
            time.sleep(60)
        return {}

    apply_fake(open_project("anvil.toml"), run)


def test_a_killed_apply_loses_only_the_stage_in_flight(project_dir):
    marker = project_dir / "in-flight"
    child = multiprocessing.get_context("fork").Process(target=_apply_and_hang, args=(project_dir, marker))
    child.start()
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    project = open_project("anvil.toml")
    state = json.loads(project.state.file.read_text())  # still valid JSON
    assert set(state["stages"]) == {"dataset.domain"}
    in_flight = next(a for a in project.plan().actions if a.stage == "dataset.behavioral")
    assert in_flight.act is Act.CREATE and not project.store.artifact(in_flight.fingerprint).exists()
    assert apply_fake(project).ran[0] == "dataset.behavioral"
    assert not any((project.store.root / "tmp").iterdir()), "debris of the killed stage is cleared"


def _hold_lock(path, ready):
    with store_lock(path):
        ready.set()
        time.sleep(60)


def test_lock_refuses_a_second_apply(tmp_path):
    ready = multiprocessing.get_context("fork").Event()
    holder = multiprocessing.get_context("fork").Process(target=_hold_lock, args=(tmp_path / "lock", ready))
    holder.start()
    try:
        assert ready.wait(10)
        refused = pytest.raises(StoreLocked, match=f"another anvil apply \\(pid {holder.pid}")
        with refused, store_lock(tmp_path / "lock"):
            pass
    finally:
        holder.kill()
        holder.join()


def test_stale_lock_of_a_dead_process_is_cleared(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    (tmp_path / "lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "since": "earlier"}))
    with store_lock(tmp_path / "lock"):
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / "lock").exists()


def test_hand_edited_artifact_is_detected_and_rebuilt(project_dir):
    apply_fake(open_project("anvil.toml"))
    project = open_project("anvil.toml")
    record = project.state.load()["dataset.domain"]
    (project.store.artifact(record.fingerprint) / "out.txt").write_text("edited by hand")
    action = next(a for a in project.plan().actions if a.stage == "dataset.domain")
    assert action.reasons == ("artifact missing or modified outside anvil",)
    assert apply_fake(project).ran == ["dataset.domain"]


def test_store_location_comes_from_the_environment(project_dir, monkeypatch, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("shared-store")
    monkeypatch.setenv("ANVIL_STORE", str(elsewhere))
    project = open_project("anvil.toml")
    apply_fake(project)
    # The artifacts go to the (shareable) store; the project's own state stays beside its recipe.
    assert len(list((elsewhere / "artifacts").iterdir())) == 8 and not (project_dir / ".anvil" / "artifacts").exists()
    assert project.state.file.is_relative_to(project_dir / ".anvil") and project.state.file.exists()
    assert not (elsewhere / "state.json").exists()
