"""First-run estimates against what the run then took, in one run: a fresh copy of the default project
(no history), its plan's estimate per stage (`basis` "machine probe": estimates/first_run.py and the
machine's measured speed), then `anvil apply` and the seconds each stage took (the store's history).
Prints each stage's ratio measured / estimated and the whole apply's; the target is within 30%.

Also prints the estimate of the seed's 31B round (recipes/gemma4-31b-pe.toml's v2.train) on the Mac the
recipe names (`[machine] profile = "m3-ultra"`) next to the seed's measured ~10 min.

Run by hand (about 10 minutes on 2 CPU cores): python benchmarks/first_estimates.py"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KEPT = ("anvil.toml", "data", "evals", "schema")


def anvil(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anvil", *args], cwd=folder, capture_output=True, text=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "default"
        folder.mkdir()
        for name in KEPT:
            source = REPO / name
            (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / name)
        plan = json.loads(anvil(folder, "plan", "--json").stdout)
        estimated = {a["stage"]: a["estimate"]["seconds"] for a in plan["actions"]}
        started = time.monotonic()
        applied = anvil(folder, "apply")
        wall = time.monotonic() - started
        if applied.returncode != 0:
            sys.exit(f"apply failed ({applied.returncode}): {applied.stderr[-2000:]}")
        runs = [json.loads(line) for line in (folder / ".anvil" / "history.jsonl").read_text().splitlines()]
        print(f"{'stage':<22}{'estimated':>11}{'measured':>11}{'ratio':>8}")
        for run in runs:
            guess = estimated.get(run["stage"])
            ratio = f"{run['seconds'] / guess:.2f}" if guess else "–"
            print(f"{run['stage']:<22}{guess or 0:>10.1f}s{run['seconds']:>10.1f}s{ratio:>8}")
        total = plan["estimated_seconds"]
        print(f"{'whole apply':<22}{total:>10.1f}s{wall:>10.1f}s{wall / total:>8.2f}   (target: 0.70 to 1.30)")
    seed = anvil(REPO, "plan", "--json", str(REPO / "recipes" / "gemma4-31b-pe.toml"))
    if seed.returncode == 0:
        actions = {a["stage"]: a for a in json.loads(seed.stdout)["actions"]}
        guess = actions.get("v2.train", {}).get("estimate", {}).get("seconds")
        if guess:
            print(f"seed's 31B v2.train on its M3 Ultra profile: {guess / 60:.1f} min (the seed measured ~10 min)")


if __name__ == "__main__":
    main()
