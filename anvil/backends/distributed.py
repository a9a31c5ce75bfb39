"""Data-parallel training through `mlx.launch`, MLX's own launcher: the only module that knows about hosts.

The training child's command runs once per process (`-n` per host), each rank given its share of every
batch by lora_worker; mlx-lm-lora's trainer averages the gradients over `mx.distributed`. mlx.launch
stops every rank as soon as one fails; it runs in the training child's process group, so stopping that
group (Anvil's `stop`, or its tether when Anvil dies) takes the local ranks with it, and remote ranks end
with their SSH session."""

from __future__ import annotations

import random
import re
import signal
import socket
import sys
from pathlib import Path

from anvil.recipe.infrastructure import Distributed


def launch_argv(launch: Distributed, command: list[str], cwd: Path) -> list[str]:
    """mlx.launch (this module run as `__main__`) running `command` (`python -m MODULE ...`) on every process."""
    return [
        sys.executable,
        "-m",
        "anvil.backends.distributed",
        "--backend",
        launch.backend,
        *launch.launch_hosts(),
        "--starting-port",
        str(free_ports(launch.world_size)),
        "--cwd",
        str(cwd),
        "--python",
        sys.executable,
        "--",
        *command[1:],
    ]  # mlx.launch puts `--python` first


def failed_ranks(log: str, launch: Distributed, explained: int) -> str:
    """Which ranks mlx.launch reported dead or failed, with their hosts, from its log; not those it stopped
    itself, nor those that exited with `explained` (they wrote their own error)."""
    found = []
    for match in re.finditer(r"Node with rank (\d+) (was killed|exited with code (-?\d+))", log):
        rank, how, code = int(match.group(1)), match.group(2), match.group(3)
        if code in ("-15", "0", str(explained)):
            continue
        if code is not None and int(code) < 0:
            how = f"was killed ({signal.Signals(-int(code)).name})"
        found.append(f"rank {rank} on {launch.host_of(rank)} {how}")
    return "; ".join(dict.fromkeys(found))


def free_ports(count: int, tries: int = 50) -> int:
    """The first of `count` consecutive TCP ports free on this machine (the ring listens on one per rank)."""
    rng = random.Random()
    for _ in range(tries):
        first = rng.randrange(20000, 60000 - count)
        try:
            for port in range(first, first + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    return 32323  # mlx.launch's own default: an occupied port will be its error to report


if __name__ == "__main__":  # mlx.launch, as a module Anvil's tether can run (mlx's own has no __main__)
    from mlx._distributed_utils.launch import main

    sys.exit(main())
