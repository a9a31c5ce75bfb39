"""The `anvil` command: a no-op `plan` answered again from its kept answer (anvil/replay.py), which costs a
Python start-up; everything else, and any plan whose inputs moved, through the full CLI (anvil/cli.py)."""

from __future__ import annotations

import gc
import os
import sys

from anvil import cli, replay  # light: each command imports what it needs when it runs
from anvil.arguments import parser
from anvil.errors import EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser(cli.COMMANDS).parse_args(argv)  # once: a usage error or --help ends here
    memo = replay.memo_for(argv, args)
    try:
        code = replay.answer(memo)
    except BrokenPipeError:  # `anvil plan | head -1`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    if code is not None:
        return code
    with replay.recording(memo) as keep:
        code = cli.run(args)
        keep(code)
    return code


def entry() -> None:
    """The `anvil` command."""
    code = main()
    gc.freeze()  # the process ends now: Python's exit then skips walking every object the command made
    sys.exit(code)


if __name__ == "__main__":
    entry()
