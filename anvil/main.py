"""The `anvil` command: a no-op `plan` answered again from its kept answer (anvil/replay.py), which costs a
Python start-up; everything else, and any plan whose inputs moved, through the full CLI (anvil/cli.py)."""

from __future__ import annotations

import os
import sys

from anvil import replay
from anvil.errors import EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    memo = replay.memo_for(argv)
    try:
        code = replay.answer(memo)
    except BrokenPipeError:  # `anvil plan | head -1`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    if code is not None:
        return code
    from anvil import cli

    with replay.recording(memo) as keep:
        code = cli.main(argv)
        keep(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
