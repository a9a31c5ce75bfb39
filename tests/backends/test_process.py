"""The one owner of processes: identity before any signal, tethered children that never outlive Anvil,
a ledger that finds what a killed Anvil left, and OS-level locks."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

from anvil.backends import process
from anvil.backends.process import Owned
from anvil.errors import StoreLocked
from anvil.state.lock import store_lock
from tests.test_executor import _hold_lock

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def wait_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while process.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not process.alive(pid)


def test_a_process_that_is_not_provably_ours_is_never_signalled():
    child = process.spawn(SLEEPER, None, tethered=False)
    try:
        impostor = Owned(child.pid, child.owned.started + 5, child.owned.host)  # the pid, reused by another
        assert not process.is_ours(impostor) and process.stop(impostor) is False
        assert process.alive(child.pid)
        assert process.is_ours(child.owned) and process.stop(child.owned) is True
        assert wait_gone(child.pid)
    finally:
        child.stop()


PARENT = """
import sys, time
from anvil.backends import process
child = process.spawn([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"], None, tethered=True)
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_tethered_child_dies_with_anvil_even_on_sigkill():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    assert process.alive(pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert wait_gone(pid, 5), "the tethered child outlived its parent"


RELEASING_PARENT = """
import sys, time
from pathlib import Path
from anvil.backends import process
argv = [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"]
child = process.spawn(argv, Path(sys.argv[2]), tethered=True)
time.sleep(1.0)  # the tether's signal handler is in place well before a server would answer its health check
if sys.argv[1] == "release":
    assert process.release(child.owned)
print(child.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("released", [False, True])
def test_the_served_server_is_tethered_until_recorded_then_outlives_apply(released, tmp_path):
    """The serve stage's SIGKILL window: before the state records the server (release), killing Anvil ends
    it; after, it runs on, recorded."""
    argv = [sys.executable, "-c", RELEASING_PARENT, "release" if released else "keep", str(tmp_path / "log")]
    parent = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    owned = None
    try:
        pid = int(parent.stdout.readline())
        owned = process.identity(pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        if released:
            time.sleep(1.0)
            assert process.alive(pid), "a released server must outlive the apply that recorded it"
        else:
            assert wait_gone(pid, 5), "an unrecorded server outlived a killed apply"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if owned is not None:
            process.stop(owned)


def test_sweep_stops_what_a_killed_anvil_left_and_forgets_the_dead(tmp_path):
    ledger = tmp_path / "processes"
    left = process.spawn(SLEEPER, None, tethered=False, ledger=ledger)
    kept = process.spawn(SLEEPER, None, tethered=False, ledger=ledger)
    (ledger / "999999.json").write_text(json.dumps({"pid": 999999, "started": 1.0, "host": "elsewhere"}))
    try:
        assert process.sweep(ledger, keep={kept.pid}) == [left.pid]
        assert wait_gone(left.pid) and process.alive(kept.pid)
        assert sorted(p.name for p in ledger.iterdir()) == [f"{kept.pid}.json"]
    finally:
        left.stop()
        kept.stop()


def test_a_judge_that_times_out_is_killed_with_its_children(tmp_path):
    marker = tmp_path / "grandchild"
    script = (
        f"import subprocess, time; p = subprocess.Popen({SLEEPER!r}); "
        f"open({str(marker)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    with pytest.raises(subprocess.TimeoutExpired):
        process.run([sys.executable, "-c", script], "", timeout_s=2)
    assert wait_gone(int(marker.read_text()))


def test_a_killed_holder_releases_the_lock_at_once(tmp_path):
    ready = multiprocessing.get_context("fork").Event()
    holder = multiprocessing.get_context("fork").Process(target=_hold_lock, args=(tmp_path / "lock", ready))
    holder.start()
    assert ready.wait(10)
    with pytest.raises(StoreLocked), store_lock(tmp_path / "lock"):
        pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    with store_lock(tmp_path / "lock"):
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()


def _race(path, start, winners):
    start.wait()
    try:
        with store_lock(path):
            entered = time.monotonic()
            time.sleep(0.3)
            winners.put((entered, time.monotonic()))
    except StoreLocked:
        pass


def test_racers_over_a_stale_lock_never_both_win(tmp_path):
    ctx = multiprocessing.get_context("fork")
    for _ in range(10):
        (tmp_path / "lock").write_text(json.dumps({"pid": 999999, "host": "gone", "since": "earlier"}))
        start, winners = ctx.Event(), ctx.Queue()
        racers = [ctx.Process(target=_race, args=(tmp_path / "lock", start, winners)) for _ in range(6)]
        for r in racers:
            r.start()
        start.set()
        for r in racers:
            r.join()
        held = sorted(winners.get(timeout=5) for _ in range(winners.qsize()))
        assert held, "someone takes over a stale lock"
        # Several may win one after another, never two at once.
        assert all(earlier[1] <= later[0] for earlier, later in zip(held, held[1:], strict=False)), held


def test_a_stepped_clock_does_not_disown_a_process_but_another_start_does():
    """On Linux a start time is boot time + ticks, and boot time follows the wall clock: after the clock
    is stepped, only the time since boot (with the same command line) still proves the process."""
    import dataclasses
    import os

    from anvil.backends.process import identity, is_ours

    me = identity(os.getpid())
    assert me is not None and me.since_boot is not None and is_ours(me)
    stepped = dataclasses.replace(me, started=me.started - 3600)  # recorded an hour "earlier" by the clock
    assert is_ours(stepped), "same process, same time since boot"
    assert not is_ours(dataclasses.replace(stepped, since_boot=me.since_boot - 60)), "another start"
    assert not is_ours(dataclasses.replace(stepped, command="python other.py")), "another command"
    assert not is_ours(dataclasses.replace(stepped, command="")), "no command to match: the clock decides"
