"""How long stages took, kept in the store for the planner's estimates: one JSON line per finished stage,
appended (a torn last line from a kill is skipped when read)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path

from anvil.estimates.arithmetic import Run

KEPT = 2000  # lines read back: the recent past predicts best


def read(path: Path) -> list[Run]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()[-KEPT:]
    except (OSError, UnicodeDecodeError):
        return []
    runs = []
    for line in lines:
        try:
            run = Run(**json.loads(line))
        except (ValueError, TypeError, RecursionError):
            continue
        if _sound(run):  # a well-formed line with a wrong type ("units": "x") is skipped like garbage
            runs.append(run)
    return runs


def _sound(run: Run) -> bool:
    numbers = (run.units, run.parameters, run.seconds)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
               for v in numbers):  # fmt: skip
        return False
    texts = (run.stage, run.kind, run.machine, run.unit)
    estimate_ok = run.estimate is None or (isinstance(run.estimate, int | float) and math.isfinite(run.estimate))
    return all(isinstance(t, str) for t in texts) and estimate_ok


def append(path: Path, run: Run) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(asdict(run)) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write of one line: concurrent appenders never interleave within it
    finally:
        os.close(fd)
