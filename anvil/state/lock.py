"""One apply at a time per store: an exclusive lock file naming its owner, cleared when the owner died."""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from anvil.errors import StoreLocked
from anvil.process import alive


@contextmanager
def store_lock(path: Path):
    """Hold `path` exclusively; a lock whose process is gone on this host is stale and taken over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(path.read_text())
            except (OSError, ValueError):
                owner = {}  # written by a process killed between create and write: stale
            if owner.get("host") == me["host"] and owner.get("pid") and alive(owner["pid"]):
                raise StoreLocked(
                    f"{path}: another anvil apply (pid {owner['pid']}, since {owner.get('since')}) is using this "
                    "store; wait for it to finish"
                ) from None
            if owner.get("host") not in (None, me["host"]):
                raise StoreLocked(
                    f"{path}: locked by pid {owner.get('pid')} on host {owner['host']}; if that apply is gone, "
                    "delete this file"
                ) from None
            path.unlink(missing_ok=True)  # stale: its process is dead
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise StoreLocked(f"{path}: could not take the store lock")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
