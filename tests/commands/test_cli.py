"""The command line as a user runs it: real subprocesses, exit codes, output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


def anvil(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "anvil", *args], capture_output=True, text=True, cwd=cwd)


def test_validate_ok_and_bad(project_dir):
    ok = anvil("validate")
    assert ok.returncode == 0 and "anvil.toml: valid (3 models, 2 datasets, 8 stages)" in ok.stdout
    (project_dir / "bad.toml").write_text((project_dir / "anvil.toml").read_text().replace("rank = 4", "rank = 0", 1))
    bad = anvil("validate", "anvil.toml", "bad.toml")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "bad.toml:11:10: models.v1.lora.rank: 0 is out of range (expected >= 1)"
    assert "Traceback" not in bad.stderr
    data = json.loads(anvil("validate", "bad.toml", "--json").stdout)
    assert data[0]["valid"] is False and data[0]["problems"][0].startswith("bad.toml:11:10")


def test_plan_apply_cycle_with_exit_codes(data_dir):
    first = anvil("plan", "--detailed-exitcode")
    assert first.returncode == 2 and "+ dataset.behavioral: create" in first.stdout
    applied = anvil("apply")
    assert applied.returncode == 0 and "✓ dataset.behavioral" in applied.stdout
    again = anvil("apply")
    assert again.returncode == 0 and "Nothing to apply." in again.stdout
    assert anvil("plan", "--detailed-exitcode").returncode == 0
    recipe = data_dir / "anvil.toml"
    recipe.write_text(recipe.read_text().replace("count = 6", "count = 5"))
    plan = json.loads(anvil("plan", "--json").stdout)
    [changed] = [a for a in plan["actions"] if a["act"] == "rerun"]
    assert changed["stage"] == "dataset.behavioral" and changed["reasons"] == ["sources[0].count 6 -> 5"]


def test_target_and_replace(data_dir):
    out = anvil("apply", "--target", "domain")
    assert out.returncode == 0 and "dataset.domain" in out.stdout and "dataset.behavioral" not in out.stdout
    forced = anvil("plan", "--replace", "dataset.domain", "--target", "domain")
    assert "~ dataset.domain: forced by --replace" in forced.stdout
    unknown = anvil("plan", "--target", "v7")
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: --target v7: no such model or stage")


def test_status_json_lists_artifacts(data_dir):
    anvil("apply")
    rows = {r["stage"]: r for r in json.loads(anvil("status", "--json").stdout)}
    assert (
        rows["dataset.domain"]["built"]
        and (data_dir / ".anvil" / "artifacts")
        in __import__("pathlib").Path(rows["dataset.domain"]["artifact"]).parents
    )
    assert "dataset.domain" in anvil("status").stdout


def test_graph_formats(project_dir):
    assert "v1_fuse --> v2_train" in anvil("graph").stdout
    assert '"v1.fuse" -> "v2.train";' in anvil("graph", "--format", "dot").stdout


def test_gc_removes_only_unreferenced_artifacts(data_dir):
    anvil("apply")
    recipe = data_dir / "anvil.toml"
    recipe.write_text(recipe.read_text().replace("count = 6", "count = 5"))
    anvil("apply")
    listed = json.loads(anvil("gc", "--dry-run", "--json").stdout)
    assert len(listed) == 1
    assert len(list((data_dir / ".anvil" / "artifacts").iterdir())) == 3
    assert anvil("gc").returncode == 0
    assert len(list((data_dir / ".anvil" / "artifacts").iterdir())) == 2
    assert anvil("plan", "--detailed-exitcode").returncode == 0


def test_bad_arguments_and_missing_recipe(tmp_path):
    missing = anvil("plan")
    assert missing.returncode == 1 and "anvil.toml: no such recipe" in missing.stderr
    assert anvil("frobnicate").returncode == 1  # usage errors are errors, never "changes pending"
    assert anvil("plan", "--nope").returncode == 1


@pytest.mark.parametrize("recipe", ["anvil.toml", "recipes/gemma4-31b-pe.toml"])
def test_shipped_recipes_validate_from_the_cli(recipe):
    assert anvil("validate", recipe, cwd=REPO).returncode == 0


def test_schema_check_fails_when_stale(tmp_path):
    assert anvil("schema", "--check").returncode == 1
    assert anvil("schema").returncode == 0
    assert anvil("schema", "--check").returncode == 0


def test_a_reader_that_stops_early_is_no_error(project_dir):
    """`anvil graph | head -1`: the pipe closes while anvil still writes (more than a pipe holds)."""
    many = "".join(f'[datasets.d{i}]\nsources = [{{ path = "data/b.jsonl", category = "b" }}]\n' for i in range(3000))
    (project_dir / "anvil.toml").write_text('[project]\nname = "many"\n' + many)
    done = subprocess.run(
        f"{sys.executable} -m anvil graph | head -1", shell=True, capture_output=True, text=True, cwd=project_dir
    )
    assert done.stderr == "" and done.stdout == "flowchart LR\n"
