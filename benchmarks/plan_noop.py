"""`anvil plan` with nothing to do over a store holding GBs of artifacts, against a full rehash.

Builds a throwaway project whose dataset sources total --gb gigabytes, applies it (so the store holds
about as much again in artifacts), then times, in the same run:
  - warm plan:  `anvil plan` as a user runs it again (stat cache trusted, rows already checked);
  - cold plan:  the same plan after deleting the stat cache (every file rehashed and re-validated);
  - rehash:     sha256 of every input and artifact byte, the cost a plan would pay without a cache.
Run by hand: python benchmarks/plan_noop.py [--gb 2] [--dir /tmp]"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from timing import timed  # benchmarks/timing.py, beside this script

from anvil.project import open_project
from anvil.state.hashing import sha256_file

ROW_BYTES = 1 << 20


def make_project(root: Path, gigabytes: float, files: int = 4) -> None:
    (root / "data").mkdir(parents=True)
    rows_per_file = max(1, int(gigabytes * (1 << 30) / ROW_BYTES / files))
    sources = []
    for f in range(files):
        with open(root / "data" / f"part{f}.jsonl", "w") as out:
            for i in range(rows_per_file):
                answer = (f"{f}-{i} " * (ROW_BYTES // 3))[:ROW_BYTES]
                out.write(
                    json.dumps(
                        {
                            "messages": [
                                {"role": "user", "content": f"q{f}-{i}"},
                                {"role": "assistant", "content": answer},
                            ]
                        }
                    )
                    + "\n"
                )
        sources.append(f'{{ path = "data/part{f}.jsonl", category = "c{f}" }}')
    (root / "anvil.toml").write_text(
        '[project]\nname = "bench"\n\n[models.base]\nsource = "synthetic:tiny"\n\n'
        f"[datasets.big]\nvalid_fraction = 0.05\nsources = [{', '.join(sources)}]\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=2.0, help="size of the dataset sources in GB (default 2)")
    ap.add_argument("--dir", default=None, help="where to build the throwaway project")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="anvil-bench-", dir=args.dir))
    try:
        make_project(root, args.gb)
        recipe = root / "anvil.toml"
        t0 = time.perf_counter()
        project = open_project(recipe)
        project.apply(project.plan())
        print(f"setup: apply took {time.perf_counter() - t0:.1f}s")

        every_file = [p for p in (root / "data").rglob("*") if p.is_file()]
        every_file += [p for p in (root / ".anvil" / "artifacts").rglob("*") if p.is_file()]
        total = sum(p.stat().st_size for p in every_file)

        def plan():
            return open_project(recipe).plan()

        warm, result = timed(plan, args.repeat)
        assert not result.changes, "the benchmark must measure a no-op plan"

        def cold():
            project.state.hashes.path.unlink(missing_ok=True)
            return plan()

        cold_s, result = timed(cold, max(1, args.repeat // 2))
        assert not result.changes
        rehash, _ = timed(lambda: [sha256_file(p) for p in every_file], max(1, args.repeat // 2))

        print(f"store + inputs: {total / 1e9:.2f} GB in {len(every_file)} files")
        print(f"warm no-op plan (stat cache):        {warm * 1000:9.1f} ms")
        print(f"cold no-op plan (cache deleted):     {cold_s * 1000:9.1f} ms   ({cold_s / warm:,.0f}x the warm plan)")
        print(f"full sha256 rehash of the same files:{rehash * 1000:9.1f} ms   ({rehash / warm:,.0f}x the warm plan)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
