"""The one owner of the processes Anvil starts. It spawns them, records them in a ledger before they can
outlive Anvil, proves that a recorded process is still the one it started (pid + start time + host,
through psutil) before it sends a signal, and stops them. Nothing else in Anvil starts or signals one.

Children run under `python -m anvil.backends.tether`, which ends them as soon as Anvil's process is gone,
however it ended. The server `apply` leaves running is released from its tether (`release`) once the
state records it; from then on its record is what later commands stop."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from anvil.backends.tether import RELEASE
from anvil.state.atomic import write_json


@dataclass(frozen=True)
class Owned:
    """A process Anvil started, as recorded: enough to prove later that a pid is still that process."""

    pid: int
    started: float  # its start time: a pid reused by another process has another one
    host: str
    command: str = ""  # its command line, as started
    # Seconds from boot to its start: on Linux a start time is boot time + ticks, and the boot time moves
    # with the wall clock, so after a clock step only this still matches (to the boot time's whole second).
    since_boot: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Owned:
        since = data.get("since_boot")
        return cls(
            int(data["pid"]),
            float(data["started"]),
            str(data["host"]),
            str(data.get("command", "")),
            None if since is None else float(since),
        )


@dataclass
class Child:
    """A process this Anvil process started and is still the parent of."""

    popen: subprocess.Popen
    owned: Owned
    ledger: Path | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def stop(self, grace_s: float = 10.0) -> None:
        """End it if it still runs (its exit status stays with `poll()`), and forget it. No identity check
        is needed: until it is reaped, its pid cannot be anyone else's."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.popen.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace_s)
        forget(self.ledger, self.owned)


def identity(pid: int) -> Owned | None:
    """The running process `pid` as an Owned record, or None if there is none."""
    try:
        process = psutil.Process(pid)
        started = process.create_time()
        return Owned(pid, started, socket.gethostname(), " ".join(process.cmdline()), started - psutil.boot_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def is_ours(owned: Owned) -> bool:
    """Whether the recorded process still runs on this host as the very process Anvil started: same pid,
    same start time (by the clock, or since boot when the clock has been stepped), same command line."""
    if owned.host != socket.gethostname():
        return False
    try:
        process = psutil.Process(owned.pid)
        command = " ".join(process.cmdline())
        started = process.create_time()
        same = abs(started - owned.started) < 0.01
        if not same and owned.since_boot is not None and owned.command:  # the command must match too
            same = abs(started - psutil.boot_time() - owned.since_boot) <= 1.0
        return same and _running(process) and (not owned.command or command == owned.command)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _running(process: psutil.Process) -> bool:
    """Not yet gone. A zombie child of ours is reaped here; until it can be, its other threads are still
    exiting and may still hold its files and sockets."""
    if process.status() != psutil.STATUS_ZOMBIE:
        return True
    try:
        return os.waitpid(process.pid, os.WNOHANG)[0] == 0
    except ChildProcessError:
        return False


def spawn(
    argv: list[str],
    log: Path | None,
    *,
    tethered: bool,
    ledger: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Child:
    """Start `argv` (a `python -m MODULE ...` command when tethered) in its own process group, its output
    appended to `log` (None: this terminal), and record it in `ledger` before returning."""
    if tethered:
        python, dash_m, *rest = argv
        assert (python, dash_m) == (sys.executable, "-m"), "only python modules run tethered"
        argv = [sys.executable, "-m", "anvil.backends.tether", str(os.getpid()), *rest]
    out: Any = None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab")  # noqa: SIM115  (closed below; the child keeps its own copy)
    try:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        if out is not None:
            out.close()
    owned = Owned(popen.pid, time.time(), socket.gethostname(), " ".join(argv))
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        started = psutil.Process(popen.pid).create_time()
        owned = Owned(popen.pid, started, owned.host, owned.command, started - psutil.boot_time())
    if ledger is not None:
        write_json(ledger / f"{popen.pid}.json", {**owned.to_json(), "argv": argv})
    return Child(popen, owned, ledger)


def stop(owned: Owned, grace_s: float = 10.0) -> bool:
    """SIGTERM the process's group, SIGKILL it if it lingers, and wait until it is gone; only if it is
    provably the process Anvil started. Returns whether it was signalled."""
    if not is_ours(owned):
        return False
    try:
        target = psutil.Process(owned.pid)  # its wait() knows the process even if the pid is reused after
    except psutil.NoSuchProcess:
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(owned.pid, sig)
            target.wait(timeout=grace_s)
            break
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            break
        except psutil.TimeoutExpired:
            continue
    return True


def release(owned: Owned, ledger: Path | None = None) -> bool:
    """Cut a tethered child's tether, once something else records it (the state): it then outlives Anvil,
    and the ledger forgets it. Only if it is provably the process Anvil started; whether it was told."""

    if not is_ours(owned):
        return False
    try:
        os.kill(owned.pid, RELEASE)
    except (ProcessLookupError, PermissionError):
        return False
    forget(ledger, owned)
    return True


def forget(ledger: Path | None, owned: Owned) -> None:
    if ledger is not None:
        (ledger / f"{owned.pid}.json").unlink(missing_ok=True)


def sweep(ledger: Path, keep: Collection[int] = ()) -> list[int]:
    """Stop what the ledger lists and nothing claims any more (left by an Anvil that was killed), except
    the pids in `keep`; forget entries whose process is gone or is provably not ours. Returns the pids
    stopped."""
    stopped = []
    for entry in sorted(ledger.glob("*.json")) if ledger.exists() else []:
        try:
            owned = Owned.from_json(json.loads(entry.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            entry.unlink(missing_ok=True)
            continue
        if owned.pid in keep:
            continue
        if stop(owned):
            stopped.append(owned.pid)
        entry.unlink(missing_ok=True)
    return stopped


def run(argv: list[str], stdin: str, timeout_s: float, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run a short program to completion (a judge): its own process group, killed whole on timeout."""
    with subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=cwd,
    ) as popen:
        try:
            out, err = popen.communicate(stdin, timeout=timeout_s)
        except BaseException:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()
            raise
    return subprocess.CompletedProcess(argv, popen.returncode, out, err)


def listener(port: int) -> str | None:
    """Who listens on TCP `port`, in words, when this user may see it: an Anvil server is named by its
    project's recipe (its working folder is under that project's state folder, `names/`)."""
    try:
        found = [
            c.pid
            for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
        ]
    except (psutil.AccessDenied, OSError):
        return None
    if not found:
        return None
    try:
        holder = psutil.Process(found[0])
        command, cwd = holder.cmdline(), Path(holder.cwd())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return f"process {found[0]}"
    state = next((folder.parent for folder in (cwd, *cwd.parents) if folder.name == "names"), None)
    if "mlx_vlm.server" in command and state is not None and state.parent.name == "state":
        recipe = state.parent.parent.parent / state.name
        return f"the server Anvil runs for {recipe} (process {found[0]}; `anvil down {recipe}` stops it)"
    shown = " ".join(command)
    return f"process {found[0]} ({shown[:60] + '…' if len(shown) > 60 else shown})"


def alive(pid: int) -> bool:
    """Whether some process (ours or not) runs under `pid`; a zombie counts as gone."""
    try:
        return _running(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # someone else's live process
