"""`python -m anvil.backends.tether PARENT_PID MODULE [ARGS...]` runs MODULE as `__main__` and ends this
process, with its whole group, as soon as PARENT_PID is no longer its parent: a child of Anvil never
outlives it, even when Anvil is killed with SIGKILL. Started only by backends/process.py."""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def main() -> None:
    parent, module, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if os.getppid() != parent:  # the parent died before we got here
        sys.exit(1)
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="anvil-tether").start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
