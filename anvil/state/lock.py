"""Exclusive locks held by the operating system (flock): released the moment their holder dies, so a
killed apply never leaves a stale lock to take over, and two processes can never both hold one.

fcntl is used directly rather than the `filelock` package: its lock opens the file with O_TRUNC on every
attempt, which would erase the owner (pid, host, since) a refused apply names in its message."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from anvil.errors import AnvilError, StoreLocked, file_system_cause


def _owner(fd: int) -> dict:
    try:
        owner = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def _open(path: Path) -> int:
    """The lock file, created if need be; an error naming it when something else stands in its place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        if e.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM):
            raise AnvilError(f"{path}: cannot create the lock file: {file_system_cause(e)}") from None
        raise AnvilError(
            f"{path}: cannot open it as a lock file ({e.strerror or e}); it is Anvil's own: remove "
            "whatever is there and run the command again"
        ) from None


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the file we locked: a holder unlinks it on release, and a lock taken on
    the unlinked file would lock nothing."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


@contextmanager
def store_lock(path: Path, what: str = "another anvil apply") -> Iterator[None]:
    """Hold `path` exclusively or raise StoreLocked naming the holder; the file is removed on release."""
    while True:
        fd = _open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _owner(fd)
            os.close(fd)
            pid, host, since = owner.get("pid", "unknown"), owner.get("host"), owner.get("since", "unknown")
            where = "" if host in (None, socket.gethostname()) else f" on host {host}"
            raise StoreLocked(
                f"{path}: {what} (pid {pid}{where}, since {since}) holds this lock; wait for it to finish"
            ) from None
        if _same_file(fd, path):
            break
        os.close(fd)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


@contextmanager
def waiting_lock(path: Path, on_wait: Callable[[], None] = lambda: None) -> Iterator[bool]:
    """Hold `path` exclusively, waiting for another holder if there is one (after calling `on_wait`);
    yields whether it waited. For sections shared by projects: a fingerprint built, restored or collected."""
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            waited = False
        except BlockingIOError:
            on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
            waited = True
        yield waited
    finally:
        os.close(fd)


def is_held(path: Path) -> bool:
    """Whether some process holds the lock at `path` right now."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:  # none there, or not a lock file: nobody holds it
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
