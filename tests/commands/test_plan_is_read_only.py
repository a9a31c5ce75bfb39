"""A plan is computed afresh every time, from everything it reads, and changes nothing: every input that
moves moves the plan (a file inside a symlinked folder, the Hugging Face cache, a store setting in any
case), and `plan` and `status` leave the project as they found it (the stat cache aside)."""

from __future__ import annotations

import json
import multiprocessing
import struct
import time

from anvil.cli import main
from anvil.planning.plan import Act
from anvil.project import open_project
from anvil.state.lock import store_lock
from tests.conftest import DATA_ONLY


def acts(recipe: str = "anvil.toml") -> dict:
    return {a.stage: a.act for a in open_project(recipe).plan().actions}


def test_a_file_added_inside_a_symlinked_folder_changes_the_plan(tmp_path):
    real = tmp_path / "real-weights"
    real.mkdir()
    (real / "config.json").write_text('{"model_type": "gemma4"}')
    (tmp_path / "weights").symlink_to(real, target_is_directory=True)
    (tmp_path / "anvil.toml").write_text('[project]\nname = "t"\n\n[models.base]\nsource = "path:weights"\n')
    assert main(["apply"]) == 0
    assert acts()["base.source"] is Act.UP_TO_DATE
    (real / "tokenizer.json").write_text("{}")  # seen only through the link
    assert acts()["base.source"] is Act.RERUN
    assert main(["plan", "--detailed-exitcode"]) == 2


def _hub_snapshot(home, repo: str, hidden: int) -> None:
    """A model in a Hugging Face cache under `home`, as a download leaves it: config and a weights header."""
    folder = home / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" / "0123abcd"
    folder.mkdir(parents=True)
    config = {"hidden_size": hidden, "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 64}
    (folder / "config.json").write_text(json.dumps(config))
    header = json.dumps({"w": {"dtype": "F32", "shape": [hidden, hidden], "data_offsets": [0, 4 * hidden * hidden]}})
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header.encode() + bytes(4 * hidden**2))


def test_the_hugging_face_cache_is_read_afresh(tmp_path, monkeypatch, capsys):
    """An `hf:` root not built yet is sized from the local Hub cache: HF_HOME moving moves the estimates."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.jsonl").write_text(
        "".join(
            json.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]})
            + "\n"
            for i in range(8)
        )
    )
    (tmp_path / "anvil.toml").write_text(
        '[project]\nname = "t"\n\n[models.base]\nsource = "hf:org/tiny"\n\n[models.v1]\nparent = "base"\n'
        'dataset = "d"\nlora = { rank = 2, last_layers = 1 }\n\n[datasets.d]\nsources = [{ path = "data/d.jsonl", '
        'category = "c" }]\n'
    )
    _hub_snapshot(tmp_path / "small", "org/tiny", 64)
    _hub_snapshot(tmp_path / "large", "org/tiny", 1024)
    plans = []
    for home in ("small", "large", "nowhere"):
        monkeypatch.setenv("HF_HOME", str(tmp_path / home))
        assert main(["plan", "--json"]) == 0
        plans.append(json.loads(capsys.readouterr().out)["actions"])
    memory = [next(a["estimate"]["memory_gb"] for a in plan if a["stage"] == "v1.train") for plan in plans]
    assert memory[0] < memory[1] and memory[2] is None


def test_a_lower_case_store_setting_moves_the_store(data_dir, tmp_path, monkeypatch):
    """pydantic-settings reads ANVIL_STORE in any case: so does the plan."""
    assert main(["apply"]) == 0
    assert main(["plan", "--detailed-exitcode"]) == 0
    (tmp_path / "empty-store").mkdir()
    monkeypatch.setenv("anvil_store", str(tmp_path / "empty-store"))
    assert main(["plan", "--detailed-exitcode"]) == 2
    assert set(acts().values()) == {Act.RERUN}  # the state records them; the store it names lacks them


def _files(root) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "hashes.json"
    }


def _hold_lock(path, ready, release):
    with store_lock(path):
        ready.set()
        release.wait(30)


def test_plan_and_status_change_nothing(project_dir):
    """No lock taken, no debris cleared, no process stopped, no page rewritten: Terraform's plan."""
    (project_dir / "anvil.toml").write_text(DATA_ONLY)
    assert main(["apply"]) == 0
    project = open_project("anvil.toml")
    debris = project.store.new_workdir("dataset.domain")  # a work folder a killed apply left
    (debris / "half-written").write_text("x")
    page = project.state.folder / "report.json"
    page.write_text(json.dumps({"live": {"running": "dataset.domain"}}))  # a page a killed apply left live
    before = _files(project_dir)
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(project.state.folder / "lock", ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        started = time.monotonic()
        for command in (["plan"], ["plan", "--json"], ["status"], ["status", "--json"]):
            assert main(command) == 0, command
        assert time.monotonic() - started < 30  # none of them waited for the lock
    finally:
        release.set()
        holder.join()
    assert _files(project_dir) == before
    assert main(["down"]) == 0 and not debris.exists()  # what takes the lock clears it
