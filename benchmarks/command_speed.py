"""The commands people run all day, as whole processes, against baselines measured in the same run:
  - `anvil validate` of a recipe over a --rows-row chat file, cold (no row cache) and warm, against parsing
    the same file with `json` (target: <= 3x the parse);
  - the checking itself: the cold validate of --rows rows minus that of a one-row file (start-up);
  - a no-op `anvil plan` of the applied default recipe (everything built, its server up), against
    `python -c pass` (target: <= 0.25 s and <= 10x). The default recipe is applied into a temporary copy
    first (minutes), unless --applied names a folder where it already is.
Each figure is the median of --repeat fresh processes, run in turn a round at a time (a shared VM's speed
drifts from minute to minute), each ratio the median of its rounds' ratios. Run by hand:
python benchmarks/command_speed.py"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

WORDS = [
    "the",
    "of",
    "to",
    "and",
    "a",
    "in",
    "is",
    "it",
    "you",
    "that",
    "he",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "his",
    "they",
    "be",
    "at",
    "one",
    "have",
    "this",
    "from",
]


def make(root: Path, rows: int, name: str = "big") -> None:
    rng = random.Random(0)
    (root / "data").mkdir(parents=True, exist_ok=True)
    with open(root / "data" / f"{name}.jsonl", "w") as f:
        for _ in range(rows):
            messages = [
                {"role": "system", "content": "You are helpful."},
                {"role": "user", "content": " ".join(rng.choices(WORDS, k=20))},
                {"role": "assistant", "content": " ".join(rng.choices(WORDS, k=60))},
            ]
            f.write(json.dumps({"messages": messages}) + "\n")
    (root / f"{name}.toml").write_text(
        f'[project]\nname = "speed"\n\n[datasets.big]\nsources = [{{ path = "data/{name}.jsonl", category = "c" }}]\n'
    )


# As installed: Python keeps the bytecode it compiles (a development shell may say not to write it, which
# makes every command compile Anvil's source again: ~0.1 s here).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def seconds(argv: list[str], cwd: Path, before=lambda: None) -> float:
    before()
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=ENV)
    if done.returncode not in (0, 2):
        sys.exit(f"{argv} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - t0


def rounds(commands: dict[str, tuple[list[str], Callable[[], object]]], cwd: Path, repeat: int) -> dict[str, list]:
    """Each command once a round, `repeat` rounds: what a busy machine does to one it does to all (a shared VM's
    speed drifts by tens of percent from minute to minute), so the ratios of a round hold."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, (argv, before) in commands.items():
            times[name].append(seconds(argv, cwd, before))
    return times


def ratio(times: dict[str, list[float]], name: str, baseline: str) -> float:
    return statistics.median(t / b for t, b in zip(times[name], times[baseline], strict=True))


def applied_default(folder: Path) -> Path:
    """A copy of the repository's default recipe, its data and suites, applied (its server left up)."""
    repo = Path(__file__).resolve().parent.parent
    for name in ("anvil.toml", "data", "evals"):
        copy = shutil.copytree if (repo / name).is_dir() else shutil.copy
        copy(repo / name, folder / name)
    subprocess.run([sys.executable, "-m", "anvil", "apply"], cwd=folder, capture_output=True, check=True, env=ENV)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--applied", type=Path, help="a folder where the default recipe is applied already")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="anvil-speed-"))
    applied = args.applied.resolve() if args.applied else None
    try:
        make(root, args.rows, "anvil")
        make(root, 1, "one")
        subprocess.run([sys.executable, "-m", "anvil", "--version"], env=ENV, check=True, capture_output=True)
        py, anvil = sys.executable, [sys.executable, "-m", "anvil"]
        cold_start = lambda: shutil.rmtree(root / ".anvil", ignore_errors=True)  # noqa: E731
        times = rounds(
            {
                "parse": (
                    [py, "-c", "import json\nfor line in open('data/anvil.jsonl'): json.loads(line)"],
                    lambda: None,
                ),
                "cold": ([*anvil, "validate"], cold_start),
                "one": ([*anvil, "validate", "one.toml"], cold_start),
            },
            root,
            args.repeat,
        )
        subprocess.run([*anvil, "validate"], cwd=root, capture_output=True, check=True, env=ENV)
        times |= rounds(
            {
                "parse again": (
                    [py, "-c", "import json\nfor line in open('data/anvil.jsonl'): json.loads(line)"],
                    lambda: None,
                ),
                "warm": ([*anvil, "validate"], lambda: None),
            },
            root,
            args.repeat,
        )
        parse, cold, one, warm = (statistics.median(times[n]) for n in ("parse", "cold", "one", "warm"))
        cold_ratio, warm_ratio = ratio(times, "cold", "parse"), ratio(times, "warm", "parse again")
        if applied is None:
            print("applying the default recipe into a temporary folder (minutes) ...", flush=True)
            applied = applied_default(root / "default")
        planned = rounds(
            {"pass": ([py, "-c", "pass"], lambda: None), "plan": ([*anvil, "plan"], lambda: None)}, applied, args.repeat
        )
        nothing, plan = statistics.median(planned["pass"]), statistics.median(planned["plan"])
        plan_ratio = ratio(planned, "plan", "pass")
        print(f"{args.rows} rows, {(root / 'data' / 'anvil.jsonl').stat().st_size / 1e6:.1f} MB")
        print(f"json parse of the file:  {parse:6.3f} s  ({args.rows / parse:9,.0f} rows/s)  baseline")
        print(f"anvil validate, cold:    {cold:6.3f} s  ({args.rows / cold:9,.0f} rows/s)  {cold_ratio:.1f}x the parse")
        print(f"anvil validate, warm:    {warm:6.3f} s  (row cache)             {warm_ratio:.1f}x the parse")
        print(
            f"  target: <= 3.0x the parse: cold {'met' if cold_ratio <= 3 else 'NOT met'}, "
            f"warm {'met' if warm_ratio <= 3 else 'NOT met'}"
        )
        print(f"anvil validate, 1 row:   {one:6.3f} s  (start-up and recipe)")
        rate = (args.rows - 1) / (cold - one)
        print(f"  checking alone:        {cold - one:6.3f} s  ({rate:9,.0f} rows/s)  cold minus the 1-row validate")
        print(f"python -c pass:          {nothing:6.3f} s  baseline")
        print(f"anvil plan, no changes:  {plan:6.3f} s  {plan_ratio:.1f}x python -c pass (the applied default recipe)")
        print(f"  target: <= 0.25 s and <= 10x: {'met' if plan <= 0.25 and plan_ratio <= 10 else 'NOT met'}")
    finally:
        if applied is not None and args.applied is None:
            subprocess.run([sys.executable, "-m", "anvil", "down"], cwd=applied, capture_output=True, env=ENV)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
