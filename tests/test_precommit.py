"""The pre-commit hooks this repository ships, run by pre-commit itself on a repository of recipes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PRE_COMMIT = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
needs_pre_commit = pytest.mark.skipif(PRE_COMMIT is None, reason="pre-commit is in the test extras")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def try_hook(cwd: Path, hook: str, tmp: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp / "pre-commit-home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    return subprocess.run(
        [PRE_COMMIT, "try-repo", str(REPO), hook, "--all-files"], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_every_hook_is_declared_twice_alike_once_installed_once_from_path():
    yaml = pytest.importorskip("yaml")
    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    for hook_id in ("anvil-validate", "anvil-plan"):
        own, system = hooks[hook_id], hooks[f"{hook_id}-system"]
        assert own["language"] == "python" and system["language"] == "system"
        assert own["entry"] == system["entry"] and own["files"] == system["files"]


@needs_pre_commit
def test_pre_commit_runs_the_hooks_and_fails_on_a_bad_recipe_or_a_pending_plan(project_dir, tmp_path, monkeypatch):
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(name, "anvil")
    git(project_dir, "init", "-q")
    git(project_dir, "add", ".")
    git(project_dir, "commit", "-qm", "recipes")
    ok = try_hook(project_dir, "anvil-validate-system", tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "anvil validate" in ok.stdout and "Passed" in ok.stdout
    pending = try_hook(project_dir, "anvil-plan-system", tmp_path)
    assert pending.returncode == 1 and "Failed" in pending.stdout and "+ v1.train: create" in pending.stdout
    recipe = project_dir / "anvil.toml"
    recipe.write_text(recipe.read_text().replace("rank = 4", "rank = 0", 1))
    git(project_dir, "commit", "-qam", "a bad rank")
    bad = try_hook(project_dir, "anvil-validate-system", tmp_path)
    assert bad.returncode == 1 and "anvil.toml:11:10: models.v1.lora.rank: 0 is out of range" in bad.stdout
