"""`python -m anvil.backends.tether PARENT_PID MODULE [ARGS...]` runs MODULE as `__main__` and ends this
process, with its whole group, as soon as PARENT_PID is no longer its parent: a child of Anvil never
outlives it, even when Anvil is killed with SIGKILL. Started only by backends/process.py.

The server `apply` leaves running is tethered too until the state records it: SIGUSR1 (sent by
`process.release` once the record is on disk) cuts the tether, so no moment exists in which it runs and
nothing records it."""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading

RELEASE = signal.SIGUSR1


def _watch(parent: int, released: threading.Event) -> None:
    while os.getppid() == parent:
        if released.wait(0.2):
            return
    if not released.is_set():
        os.killpg(os.getpgrp(), signal.SIGKILL)


def main() -> None:
    parent, module, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if os.getppid() != parent:  # the parent died before we got here
        sys.exit(1)
    released = threading.Event()
    signal.signal(RELEASE, lambda signum, frame: released.set())
    threading.Thread(target=_watch, args=(parent, released), daemon=True, name="anvil-tether").start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
