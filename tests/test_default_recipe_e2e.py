"""The README's promise: the embedded default recipe builds base -> v1 -> v2 for real, and the
rounds visibly learn. The slowest test (about 5 minutes on 2 cores); CI runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from anvil.project import open_project
from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def test_default_recipe_applies_and_learns(tmp_path):
    shutil.copy(REPO / "anvil.toml", tmp_path / "anvil.toml")
    shutil.copytree(REPO / "data", tmp_path / "data")
    done = subprocess.run([sys.executable, "-m", "anvil", "apply"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Applied: 7 ran" in done.stdout
    state = open_project(tmp_path / "anvil.toml").store.load_state()
    for round_ in ("v1", "v2"):
        m = state[f"{round_}.train"].metrics
        assert m["train_loss_last"] < m["train_loss_first"] / 3, m
        assert m["valid_loss_last"] < m["valid_loss_first"] / 3, m
        assert m["sample_similarity_after"] > m["sample_similarity_before"] + 0.2, m
    again = subprocess.run([sys.executable, "-m", "anvil", "plan", "--detailed-exitcode"], cwd=tmp_path)
    assert again.returncode == 0
