"""Evaluation and gates for real on a very small lineage: answers generated through mlx-vlm's server,
a `command` judge that is a real subprocess, judge failures that keep finished work, and a failed gate
that keeps the model from being served."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from anvil.backends.server import free_port
from anvil.commands.eval_show import eval_results
from anvil.project import open_project
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

JUDGE = """
import json, os, sys
prompt = sys.stdin.read()
with open(os.environ["JUDGE_CALLS"], "a") as f:
    f.write("x")
if os.environ.get("JUDGE_MODE") == "fail":
    print("judge is down", file=sys.stderr)
    sys.exit(2)
print(json.dumps({"score": 4, "rationale": "answered" if "assistant:" in prompt else "no answer"}))
"""

RECIPE = """\
[project]
name = "judged"

[models.base]
source = "synthetic:judged"
synthetic = {{ hidden_size = 32, intermediate_size = 64, num_layers = 2, num_heads = 2, head_dim = 16, vocab_size = 320 }}

[models.v1]
parent = "base"
dataset = "d"
lora = {{ rank = 2, last_layers = 1 }}
train = {{ steps = 4, batch_size = 2, max_seq_length = 64, val_batches = 1 }}

[datasets.d]
valid_fraction = 0.25
sources = [{{ path = "data/voice.jsonl", category = "voice", count = 8 }}]

[eval]
runs = 2
compare = ["base", "v1"]
judge = {{ kind = "command", argv = ["{python}", "judge.py"], timeout_s = 30, retries = 2 }}
suites = ["suite"]
max_tokens = 8

[[gates]]
model = "v1"
metric = "suite.composite"
min = {gate}

[serve]
model = "v1"
port = {port}
"""


def anvil(folder: Path, *args: str, mode: str = "ok") -> subprocess.CompletedProcess:
    env = {**os.environ, "JUDGE_MODE": mode, "JUDGE_CALLS": str(folder / "calls")}
    return subprocess.run([sys.executable, "-m", "anvil", *args], cwd=folder, env=env, capture_output=True, text=True)


def calls(folder: Path) -> int:
    return len((folder / "calls").read_text()) if (folder / "calls").exists() else 0


def test_judge_failures_gates_and_promotion(tmp_path):
    (tmp_path / "data").mkdir()
    shutil.copy(REPO / "data" / "voice.jsonl", tmp_path / "data")
    (tmp_path / "judge.py").write_text(JUDGE)
    (tmp_path / "suite").mkdir()
    for name, question in (("greet", "Hello"), ("opinion", "Tea or coffee?")):
        (tmp_path / "suite" / f"{name}.toml").write_text(
            f'category = "voice"\nturns = ["{question}"]\nrubric = "Answers in one short sentence."\n'
        )
    port = free_port()
    recipe = tmp_path / "anvil.toml"
    recipe.write_text(RECIPE.format(python=sys.executable, gate=4.5, port=port))

    down = anvil(tmp_path, "apply", mode="fail")
    assert down.returncode == 1 and "Traceback" not in down.stderr
    assert "judge failures (finished tests are kept" in down.stderr
    assert "suite/greet run 1: judge failed after 2 attempts" in down.stderr
    assert "exited with code 2: judge is down" in down.stderr
    kept = sorted((tmp_path / ".anvil" / "scratch").glob("*/suite.*.json"))
    assert len(kept) == 4, "the transcripts of every test and run of base.eval are kept for the next apply"
    marked = json.loads(kept[0].read_text())
    marked["transcript"]["messages"][-1]["content"] = marked["transcript"]["final"] = "KEPT"
    kept[0].write_text(json.dumps(marked))

    gated = anvil(tmp_path, "apply")
    assert gated.returncode == 3, gated.stderr
    assert "✗ v1.gate FAILED" in gated.stdout, "a failed gate is shown as a failure where it happens"
    assert "suite composite: base 4.00; v1 4.00 (+0.00 vs base" in gated.stdout
    assert gated.stdout.rstrip().endswith("Serving nothing."), "the last line says what is served"
    assert "v1.gate FAILED (not promoted)" in gated.stderr
    assert "suite.composite" in gated.stderr and "4.00" in gated.stderr and "needs >= 4.5" in gated.stderr
    project = open_project(recipe)
    state = project.state.load()
    assert "serve" not in state, "a model whose gates fail is not served"
    results = eval_results(project, "v1")
    summary = results["suites"]["suite"]
    assert summary.composite == 4.0 and summary.delta_vs_base.composite == 0.0
    assert len(results["runs"]) == 4 and all(r.verdict.rationale == "answered" for r in results["runs"])
    base_runs = eval_results(project, "base")["runs"]  # the failed apply stopped at base.eval
    assert "KEPT" in [r.transcript["final"] for r in base_runs], "finished transcripts are not regenerated"
    plan = anvil(tmp_path, "plan")
    assert "! serve: blocked: v1.gate failed" in plan.stdout
    assert "= v1.gate: up to date  [last: FAILED 1 of 1: suite.composite 4.00]" in plan.stdout
    assert anvil(tmp_path, "plan", "--detailed-exitcode").returncode == 2, "a model held back is not 'no changes'"

    judged = calls(tmp_path)
    again = anvil(tmp_path, "apply")
    assert again.returncode == 3 and "Nothing to apply." in again.stdout and "v1.gate FAILED" in again.stderr
    assert calls(tmp_path) == judged, "a second apply calls no judge and trains nothing"

    shown = anvil(tmp_path, "eval", "show", "v1", "greet")
    assert (
        shown.returncode == 0 and "suite/greet run 1: score 4.00" in shown.stdout and "judge: answered" in shown.stdout
    )

    recipe.write_text(RECIPE.format(python=sys.executable, gate=3.0, port=port))
    plan = anvil(tmp_path, "plan")
    assert "~ v1.gate: gates[0].min 4.5 -> 3.0" in plan.stdout
    try:
        promoted = anvil(tmp_path, "apply")
        assert promoted.returncode == 0, promoted.stderr
        assert calls(tmp_path) == judged, "re-gating re-judges nothing"
        rows = {row["stage"]: row for row in json.loads(anvil(tmp_path, "status", "--json").stdout)}
        assert rows["serve"]["built"] and rows["serve"]["summary"].startswith("v1 at http://127.0.0.1:")
        assert "serve" in open_project(recipe).state.load()
    finally:
        anvil(tmp_path, "down")


GOOD_JUDGE = """
import json, re, sys
prompt = sys.stdin.read()
found = re.search(r"SCORE=(\\d)", prompt)  # a calibration answer carries the score a careful judge would give
print(json.dumps({"score": int(found.group(1)) if found else 4, "rationale": "as marked" if found else "answered"}))
"""
CALIBRATION = [
    ("greet", "Hello there. SCORE=5", 5),
    ("greet", "SCORE=0 go away", 0),
    ("greet", "Hi SCORE=3", 3),
    ("opinion", "Tea. SCORE=5", 5),
    ("opinion", "Both are fine. SCORE=1", 1),
    ("opinion", "Coffee, I suppose. SCORE=3", 3),
]


def test_a_judge_that_disagrees_with_a_person_blocks_its_scores_until_it_is_fixed(tmp_path):
    """A suite's calibration set (answers a person scored) against a constant judge: agreement collapses,
    the calibration fails naming the figure, every evaluation of the suite, its gates and the server are
    blocked. A judge that agrees re-runs calibration first (plan says so), then the scores count, with the
    judge's own spread from repeated judgements beside the runs'."""
    (tmp_path / "data").mkdir()
    shutil.copy(REPO / "data" / "voice.jsonl", tmp_path / "data")
    (tmp_path / "judge.py").write_text(JUDGE)
    (tmp_path / "good_judge.py").write_text(GOOD_JUDGE)
    (tmp_path / "suite" / "calibration").mkdir(parents=True)
    for name, question in (("greet", "Hello"), ("opinion", "Tea or coffee?")):
        (tmp_path / "suite" / f"{name}.toml").write_text(
            f'category = "voice"\nturns = ["{question}"]\nrubric = "Answers in one short sentence."\n'
        )
    (tmp_path / "suite" / "calibration" / "person.jsonl").write_text(
        "".join(json.dumps({"test": t, "answer": a, "score": s}) + "\n" for t, a, s in CALIBRATION)
    )
    recipe = tmp_path / "anvil.toml"
    text = RECIPE.format(python=sys.executable, gate=3.0, port=free_port()).replace(
        "max_tokens = 8\n", "max_tokens = 8\njudge_agreement = { min_kappa = 0.6, max_mae = 0.75 }\njudge_repeats = 2\n"
    )
    recipe.write_text(text)

    bad = anvil(tmp_path, "apply")
    assert bad.returncode == 3, bad.stdout[-2000:] + bad.stderr[-2000:]
    assert "suite.calibration FAILED (its judge's scores do not count: evaluations blocked)" in bad.stderr
    assert "quadratic-weighted kappa cannot be computed: the judge (or the person) gave every answer the same" in (
        bad.stderr
    )
    assert "mean absolute error" in bad.stderr and "(max_mae)" in bad.stderr
    state = open_project(recipe).state.load()
    assert state["suite.calibration"].metrics["kappa"]["value"] is None and "v1.eval" not in state
    assert "serve" not in state and bad.stdout.rstrip().endswith("Serving nothing.")
    plan = anvil(tmp_path, "plan")
    assert "! v1.eval: blocked: suite.calibration failed" in plan.stdout and "! v1.gate: blocked" in plan.stdout

    recipe.write_text(text.replace('"judge.py"', '"good_judge.py"'))
    plan = anvil(tmp_path, "plan").stdout
    assert plan.index("~ suite.calibration: judge.argv") < plan.index("+ v1.eval"), "calibration first, and why"
    good = anvil(tmp_path, "apply")
    project = open_project(recipe)
    try:
        assert good.returncode == 0, good.stdout[-2000:] + good.stderr[-2000:]
        calibrated = project.state.load()["suite.calibration"].metrics
        assert calibrated["kappa"]["value"] == 1.0 and calibrated["mae"]["value"] == 0 and not calibrated["shortfalls"]
        summary = eval_results(project, "v1")["suites"]["suite"]
        assert summary.noise.judge_std == 0.0 and all(t.judge_std == 0.0 for t in summary.tests.values())
        shown = " ".join(anvil(tmp_path, "eval", "show", "v1").stdout.split())  # prose wraps at 80 columns
        assert "judge vs a person on 6 answers: kappa 1.00" in shown and "judge spread (repeated" in shown
        assert project.state.load()["serve"].config["model"] == "v1"
    finally:
        project.down()
