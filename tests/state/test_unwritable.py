"""A store on a full disk or a read-only file system: one message naming the path and the cause, a
documented exit code, never a traceback, and the state as it was. Each runs on a small tmpfs mounted for
the test (root, as CI runs; skipped where mounting is not allowed)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DATA_ONLY


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "4m") -> Iterator[Path]:
    folder.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def anvil(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anvil", *args], cwd=folder, capture_output=True, text=True)


def applied_project(project_dir: Path, disk: Path) -> Path:
    folder = disk / "p"
    shutil.copytree(project_dir / "data", folder / "data")
    (folder / "anvil.toml").write_text(DATA_ONLY)
    assert anvil(folder, "apply").returncode == 0
    (folder / "anvil.toml").write_text(DATA_ONLY.replace("count = 6", "count = 5"))  # one dataset to rebuild
    return folder


def test_a_full_disk_is_one_message_and_the_state_stays(project_dir, tmp_path):
    with tmpfs(tmp_path / "disk") as disk:
        folder = applied_project(project_dir, disk)
        state = next((folder / ".anvil" / "state").rglob("state.json"))
        before = state.read_bytes()
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as filler:
            while True:
                filler.write(b"\0" * (64 << 10))
                filler.flush()
        applied = anvil(folder, "apply")
        assert applied.returncode == 1 and "Traceback" not in applied.stderr, applied.stderr
        assert "the disk is full" in applied.stderr, applied.stderr
        assert state.read_bytes() == before, "nothing half-written"
        assert not list(state.parent.glob(".state.json.*.tmp"))


def test_a_read_only_store_is_named_as_read_only(project_dir, tmp_path):
    with tmpfs(tmp_path / "disk") as disk:
        folder = applied_project(project_dir, disk)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        planned = anvil(folder, "plan")
        assert planned.returncode == 0 and "~ dataset.behavioral" in planned.stdout, planned.stderr
        applied = anvil(folder, "apply")
        assert applied.returncode == 1 and "Traceback" not in applied.stderr, applied.stderr
        assert "read-only" in applied.stderr and "remove whatever is there" not in applied.stderr, applied.stderr
