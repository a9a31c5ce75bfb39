"""The commands people run all day, as whole processes, against baselines measured in the same run:
  - `anvil validate` of a recipe over a --rows-row chat file, cold (no row cache) and warm, against
    parsing the same file with `json` (rows/s);
  - a no-op `anvil plan` (everything built), against `python -c pass`.
Each figure is the median of --repeat fresh processes. Run by hand: python benchmarks/command_speed.py"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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


def make(root: Path, rows: int) -> None:
    rng = random.Random(0)
    (root / "data").mkdir(parents=True)
    with open(root / "data" / "big.jsonl", "w") as f:
        for _ in range(rows):
            messages = [{"role": "system", "content": "You are helpful."},
                        {"role": "user", "content": " ".join(rng.choices(WORDS, k=20))},
                        {"role": "assistant", "content": " ".join(rng.choices(WORDS, k=60))}]  # fmt: skip
            f.write(json.dumps({"messages": messages}) + "\n")
    (root / "anvil.toml").write_text('[project]\nname = "speed"\n\n[datasets.big]\n'
                                     'sources = [{ path = "data/big.jsonl", category = "c" }]\n')  # fmt: skip


def median_seconds(argv: list[str], cwd: Path, repeat: int, before=lambda: None) -> float:
    times = []
    for _ in range(repeat):
        before()
        t0 = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if done.returncode not in (0, 2):
            sys.exit(f"{argv} failed: {done.stderr[-2000:]}")
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="anvil-speed-"))
    try:
        make(root, args.rows)
        py, anvil = sys.executable, [sys.executable, "-m", "anvil"]
        parse = median_seconds([py, "-c", "import json\nfor line in open('data/big.jsonl'): json.loads(line)"],
                               root, args.repeat)  # fmt: skip
        cold = median_seconds([*anvil, "validate"], root, args.repeat,
                              lambda: shutil.rmtree(root / ".anvil", ignore_errors=True))  # fmt: skip
        warm = median_seconds([*anvil, "validate"], root, args.repeat)
        subprocess.run([*anvil, "apply"], cwd=root, capture_output=True, check=True)
        nothing = median_seconds([py, "-c", "pass"], root, args.repeat)
        plan = median_seconds([*anvil, "plan"], root, args.repeat)
        print(f"{args.rows} rows, {(root / 'data' / 'big.jsonl').stat().st_size / 1e6:.1f} MB")
        print(f"json parse of the file:  {parse:6.3f} s  ({args.rows / parse:9,.0f} rows/s)  baseline")
        print(
            f"anvil validate, cold:    {cold:6.3f} s  ({args.rows / cold:9,.0f} rows/s)  {cold / parse:.1f}x the parse"
        )
        print(f"anvil validate, warm:    {warm:6.3f} s  (row cache)             {warm / parse:.1f}x the parse")
        print(f"python -c pass:          {nothing:6.3f} s  baseline")
        print(f"anvil plan, no changes:  {plan:6.3f} s  {plan / nothing:.1f}x python -c pass (target: <= 0.15 s)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
