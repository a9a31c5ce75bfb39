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
TAIL_BYTES = 4 << 20  # read back at most this much of the end of the file (KEPT lines are far less)


def read(path: Path) -> list[Run]:
    """The runs of the last KEPT lines; nothing (no estimates from history) when the file cannot be read."""
    try:
        with open(path, "rb") as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - TAIL_BYTES))
            lines = file.read(TAIL_BYTES).decode("utf-8", "replace").splitlines()[-KEPT:]
    except OSError:
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
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in numbers):
        return False
    texts = (run.stage, run.kind, run.machine, run.unit)
    estimate_ok = run.estimate is None or (isinstance(run.estimate, int | float) and math.isfinite(run.estimate))
    return all(isinstance(t, str) for t in texts) and estimate_ok


def append(path: Path, run: Run) -> bool:
    """Add a line; whether it could. The history only improves estimates: a history that cannot be written
    (a folder in its place, a full disk) never fails the stage whose time it would have kept."""
    line = (json.dumps(asdict(run)) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        os.write(fd, line)  # one write of one line: concurrent appenders never interleave within it
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
