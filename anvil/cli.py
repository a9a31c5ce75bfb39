"""The `anvil` command: the COMMANDS tuple and the dispatch. A command is a module of anvil/commands/ with
`add_to(subparsers)` and `run(args) -> int` (exit codes in the README); adding one is a module and an entry
here. Argument errors exit 1: 2 is `plan --detailed-exitcode`'s "changes pending"."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys

from anvil import __version__, errors
from anvil.commands import (
    Parser,
    adopt,
    apply,
    down,
    eval_show,
    export,
    graph,
    plan,
    report,
    schema,
    serve,
    status,
    transfer,
    validate,
)
from anvil.commands import gc as collect
from anvil.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, AnvilError, InvalidInput

COMMANDS = (
    validate,
    schema,
    plan,
    apply,
    serve,
    down,
    eval_show,
    status,
    report,
    adopt,
    export,
    transfer,
    graph,
    collect,
)


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="anvil", description="Fine-tuning lineages as one recipe: plan, apply, gate.")
    p.add_argument("--version", action="version", version=f"anvil {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.add_to(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # a usage error or --help ends here
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, errors.Stopped.raise_it)
    try:
        return args.run(args)
    except BrokenPipeError:  # `anvil graph | head -1`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except AnvilError as e:
        print(f"error: {e}" if not isinstance(e, InvalidInput) else str(e), file=sys.stderr, flush=True)
        return e.exit_code
    except OSError as e:  # the file system refused (full disk, read-only, permissions): its path and why
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{errors.file_system_cause(e)}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except KeyboardInterrupt as e:  # Ctrl-C: 130; SIGTERM, SIGHUP: 128 + the signal (README, exit codes)
        said = (
            "stopped"
            if args.run is serve.run
            else "interrupted; finished stages are recorded, the one in flight is discarded"
        )
        print(said, file=sys.stderr, flush=True)
        return 128 + e.signum if isinstance(e, errors.Stopped) else EXIT_INTERRUPTED


def entry() -> None:
    """The `anvil` command."""
    code = main()
    gc.freeze()  # the process ends now: Python's exit then skips walking every object the command made
    sys.exit(code)


if __name__ == "__main__":
    entry()
