"""How long stages took, kept in the store for the planner's estimates: one JSON line per finished stage,
appended (a torn last line from a kill is skipped when read)."""

from __future__ import annotations

import json
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
            runs.append(Run(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return runs


def append(path: Path, run: Run) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(asdict(run)) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write of one line: concurrent appenders never interleave within it
    finally:
        os.close(fd)
