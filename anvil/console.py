"""How the command line writes: plain lines as they are, and rich's consoles (tables, progress, colour)
made on first use, so that a command that prints only lines (`validate`, `schema`, errors) never imports
rich."""

from __future__ import annotations

import sys
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def say(text: str, stderr: bool = False) -> None:
    """A line as it is: no markup, no emoji codes, nothing highlighted."""
    print(text, file=sys.stderr if stderr else sys.stdout, flush=stderr)


def warn(text: str) -> None:
    err().print(f"warning: {text}", style="yellow", markup=False)


@cache
def _console(stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def out() -> Console:
    return _console(False)


def err() -> Console:
    return _console(True)
