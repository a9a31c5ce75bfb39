"""`kill -9` (and SIGTERM) at random moments of a reduced apply that trains, fuses, evaluates through
servers and serves: after each kill, the next `anvil` command must find no process left behind that
nothing records, the state must load, and the apply that resumes must end with the same artifacts,
digest for digest, as an apply that was never interrupted.

Run by hand: python benchmarks/kill_campaign.py [--kills 15] [--terms 5] [--seed 0]
Prints each trial and the totals (tracebacks, orphaned processes, digest mismatches)."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent

RECIPE = """\
[project]
name = "campaign"

[models.base]
source = "synthetic:campaign"
synthetic = {{ hidden_size = 32, intermediate_size = 64, num_layers = 2, num_heads = 2, head_dim = 16, vocab_size = 320 }}

[models.v1]
parent = "base"
dataset = "d"
lora = {{ rank = 4, last_layers = 2 }}
train = {{ steps = 24, batch_size = 2, learning_rate = 2e-3, max_seq_length = 128, val_interval = 6, val_batches = 1, checkpoint_interval = 4 }}

[datasets.d]
valid_fraction = 0.25
sources = [{{ path = "data/voice.jsonl", category = "voice", count = 16 }}]

[eval]
runs = 2
compare = ["base", "v1"]
judge = {{ kind = "rules" }}
suites = ["suite"]
max_tokens = 12

[serve]
model = "v1"
port = {port}
"""
TEST = 'category = "voice"\nturns = ["Hi there"]\nrubric = "Greets."\n[[checks]]\nkind = "min_length"\nlength = 1\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make(folder: Path) -> Path:
    (folder / "data").mkdir(parents=True)
    shutil.copy(REPO / "data" / "voice.jsonl", folder / "data")
    (folder / "suite").mkdir()
    (folder / "suite" / "greet.toml").write_text(TEST)
    (folder / "anvil.toml").write_text(RECIPE.format(port=free_port()))
    return folder


def anvil(folder: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "anvil", *args], cwd=folder, capture_output=True, text=True, timeout=timeout
    )


def digests(folder: Path) -> dict[str, str]:
    state = json.loads(next(folder.glob(".anvil/state/*/state.json")).read_text())
    return {sid: r["outputs"] for sid, r in state["stages"].items() if r["kind"] != "serve"}


def ours(folder: Path) -> list[psutil.Process]:
    """Live processes started for this project: servers and trainers whose command line names it."""
    found = []
    for p in psutil.process_iter(["cmdline", "cwd", "status"]):
        try:
            line, cwd = " ".join(p.info["cmdline"] or []), p.info["cwd"] or ""
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if (
            p.info["status"] != psutil.STATUS_ZOMBIE
            and ("mlx_vlm.server" in line or "lora_worker" in line)
            and (str(folder) in line or cwd.startswith(str(folder)))
        ):
            found.append(p)
    return found


def recorded_server(folder: Path) -> int | None:
    files = list(folder.glob(".anvil/state/*/state.json"))
    stages = json.loads(files[0].read_text())["stages"] if files else {}
    return stages["serve"]["metrics"]["pid"] if "serve" in stages else None


def trial(folder: Path, sig: int, after_s: float) -> dict:
    proc = subprocess.Popen(
        [sys.executable, "-m", "anvil", "apply"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(after_s)
    finished = proc.poll() is not None
    proc.send_signal(sig)
    stderr = proc.communicate()[1]
    result = {
        "signal": signal.Signals(sig).name,
        "after_s": round(after_s, 1),
        "finished_first": finished,
        "exit": proc.returncode,
        "tracebacks": int("Traceback" in stderr),
    }
    if sig == signal.SIGTERM:  # ended cleanly: nothing of it may be left, without any next command
        time.sleep(0.5)
        result["orphans"] = len([p for p in ours(folder) if p.pid != recorded_server(folder)])
    time.sleep(0.5)  # a tethered child notices its parent is gone within 0.2 s
    planned = anvil(folder, "plan")  # reads what the kill left: the state must load
    swept = anvil(folder, "down")  # a command that takes the lock: it must find and stop what the kill left
    result["tracebacks"] += int("Traceback" in planned.stderr) + int("Traceback" in swept.stderr)
    result["state_loads"] = planned.returncode == 0 and swept.returncode == 0
    leftovers = [p for p in ours(folder) if p.pid != recorded_server(folder)]
    result["orphans"] = result.get("orphans", 0) + len(leftovers)
    for p in leftovers:
        p.kill()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=15, help="SIGKILL trials")
    ap.add_argument("--terms", type=int, default=5, help="SIGTERM trials")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="anvil-campaign-"))
    try:
        reference = make(root / "reference")
        t0 = time.monotonic()
        done = anvil(reference, "apply")
        whole_s = time.monotonic() - t0
        assert done.returncode == 0, done.stderr[-3000:]
        expected = digests(reference)
        anvil(reference, "down")
        print(f"uninterrupted apply: {whole_s:.1f}s, {len(expected)} artifacts")
        totals = {
            "trials": 0,
            "tracebacks": 0,
            "orphans": 0,
            "state_unreadable": 0,
            "resumes_failed": 0,
            "digest_mismatches": 0,
        }
        trials = [signal.SIGKILL] * args.kills + [signal.SIGTERM] * args.terms
        rng.shuffle(trials)
        for i, sig in enumerate(trials):
            folder = make(root / f"trial{i}")  # a fresh project each time: the kill lands anywhere in a build
            result = trial(folder, sig, rng.uniform(0.5, whole_s * 0.95))
            finished = anvil(folder, "apply")  # resume to the end and compare with the uninterrupted build
            result["resumed"] = finished.returncode
            result["tracebacks"] += int("Traceback" in finished.stderr)
            got = digests(folder)
            result["mismatched"] = [s for s in expected if got.get(s) != expected[s]]
            anvil(folder, "down")
            leftovers = ours(folder)
            result["orphans"] += len(leftovers)
            print(f"trial {i + 1:2d}: {result}")
            totals["trials"] += 1
            totals["tracebacks"] += result["tracebacks"]
            totals["orphans"] += result["orphans"]
            totals["state_unreadable"] += not result["state_loads"]
            totals["resumes_failed"] += finished.returncode != 0
            totals["digest_mismatches"] += len(result["mismatched"])
            shutil.rmtree(folder, ignore_errors=True)
        print("totals:", json.dumps(totals))
    finally:
        for folder in root.iterdir():
            if (folder / "anvil.toml").exists():
                anvil(folder, "down")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
