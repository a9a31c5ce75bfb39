"""Data-parallel training through mlx.launch (ring backend, 2 processes on this machine): the same round
as one process, a rank killed mid-run, and the resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from anvil.project import open_project
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

RECIPE = """
[project]
name = "dist"

[models.base]
source = "synthetic:tiny"

[models.v1]
parent = "base"
dataset = "d"
lora = {{ rank = 4, last_layers = 2 }}
train = {{ steps = {steps}, batch_size = 4, learning_rate = 2e-3, max_seq_length = 128, val_interval = 5, checkpoint_interval = 5 }}
{distributed}

[datasets.d]
valid_fraction = 0.2
sources = [{{ path = "data/edge_cases.jsonl", category = "edge" }}]
"""


def project(folder: Path, processes: int, steps: int = 20, hostfile: bool = False) -> Path:
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "edge_cases.jsonl").write_text((REPO / "data" / "edge_cases.jsonl").read_text())
    distributed = f"distributed = {{ processes_per_host = {processes} }}" if processes > 1 else ""
    if hostfile:  # mlx.launch's own format: one entry a process
        hosts = [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}] * processes
        (folder / "hosts.json").write_text(json.dumps({"hosts": hosts}))
        distributed = 'distributed = { hostfile = "hosts.json" }'
    (folder / "anvil.toml").write_text(RECIPE.format(steps=steps, distributed=distributed))
    return folder


def apply(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anvil", "apply"], cwd=folder, capture_output=True, text=True)


def trained(folder: Path):
    p = open_project(folder / "anvil.toml")
    record = p.state.load()["v1.train"]
    return record, json.loads((p.store.artifact(record.fingerprint) / "loss.json").read_text())


def test_two_processes_train_the_round_one_process_does(tmp_path):
    one, two = project(tmp_path / "one", 1), project(tmp_path / "two", 2)
    for folder in (one, two):
        done = apply(folder)
        assert done.returncode == 0, done.stdout + done.stderr
    (r1, curve1), (r2, curve2) = trained(one), trained(two)
    assert r2.metrics["processes"] == 2 and "processes" not in r1.config and r2.config["processes"] == 2
    assert r1.fingerprint != r2.fingerprint, "the world size changes the weights: it is in the fingerprint"
    # the same data, in the same batches: the loss before training and after the first step are the same
    assert curve1["valid"][0]["loss"] == pytest.approx(curve2["valid"][0]["loss"], abs=1e-4)
    assert curve1["train"][0]["loss"] == pytest.approx(curve2["train"][0]["loss"], abs=1e-4)
    # then gradients averaged per process weight tokens a little differently: the curves stay close
    for a, b in zip(curve1["valid"], curve2["valid"], strict=True):
        assert abs(a["loss"] - b["loss"]) < 0.1 * a["loss"], (curve1["valid"], curve2["valid"])
    assert curve2["train"][-1]["loss"] < 0.7 * curve2["train"][0]["loss"], "two processes learn"


def test_a_rank_killed_stops_the_others_and_the_next_apply_resumes(tmp_path):
    folder = project(tmp_path / "killed", 2, steps=60, hostfile=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "anvil", "apply"], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline, victim = time.monotonic() + 240, None
    while time.monotonic() < deadline and victim is None:
        if list(folder.glob(".anvil/scratch/*/0000010_adapters.safetensors")):
            for p in psutil.process_iter(["cmdline", "environ"]):
                try:
                    env, cmd = p.info["environ"] or {}, " ".join(p.info["cmdline"] or [])
                except (psutil.Error, TypeError):
                    continue
                if "anvil.backends.lora_worker" in cmd and env.get("MLX_RANK") == "1" and str(folder) in cmd:
                    victim = p
        time.sleep(0.1)
    assert victim is not None, "rank 1 was found running"
    os.kill(victim.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 1 and "distributed training stopped: rank 1 on 127.0.0.1 was killed (SIGKILL)" in err, err
    assert "Traceback" not in err.split("The end of its log")[0]
    left = [p for p in psutil.process_iter(["cmdline"]) if str(folder) in " ".join(p.info["cmdline"] or [])]
    assert left == [], "no rank is left behind"
    resumed = apply(folder)
    assert resumed.returncode == 0, resumed.stderr
    record, curve = trained(folder)
    assert record.metrics["resumed_from_step"] >= 10 and len(curve["train"]) == 60
