"""How the command line writes: plain lines as they are, and rich's consoles (tables, progress, colour)
made on first use, so that a command that prints only lines (`validate`, `schema`, errors, and `plan` when
nothing would be coloured) never imports rich."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

TRAILING = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$", re.MULTILINE)  # spaces before a line's end (and its resets)


def say(text: str, stderr: bool = False) -> None:
    """A line as it is: no markup, no emoji codes, nothing highlighted."""
    print(text, file=sys.stderr if stderr else sys.stdout, flush=stderr)


def warn(text: str) -> None:
    lines(stderr=True).print(f"warning: {text}", style="yellow", markup=False)


class Plain:
    """rich's `Console.print` for lines when nothing would be coloured (output to a file or a pipe): the text as
    it is, markup and styles left out."""

    def __init__(self, stderr: bool):
        self.file = sys.stderr if stderr else sys.stdout

    def print(self, text: str = "", **style: Any) -> None:
        print(text, file=self.file, flush=self.file is sys.stderr)


def lines(stderr: bool = False) -> Console | Plain:
    """Where to print lines that may be coloured: rich's console when it would colour them (a terminal, or
    FORCE_COLOR / TTY_COMPATIBLE), plain print otherwise."""
    stream = sys.stderr if stderr else sys.stdout
    coloured = stream.isatty() or any(os.environ.get(name) for name in ("FORCE_COLOR", "TTY_COMPATIBLE"))
    return _console(stderr) if coloured else Plain(stderr)


@cache
def _console(stderr: bool) -> Console:
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    console.on_broken_pipe = _reader_gone  # type: ignore[method-assign]  # rich would exit 1 on its own
    return console


def _reader_gone() -> None:
    """`anvil status | head -3`: the reader has all it wants, which cli.main answers with exit 0."""
    raise BrokenPipeError


def out() -> Console:
    return _console(False)


def fitted(render: Callable[[Console], None]) -> None:
    """Print what `render` writes on stdout's console with prose wrapped at the terminal's width (not left
    to the terminal) and no line ending in spaces (rich pads table cells)."""
    console = out()
    console.soft_wrap = False
    try:
        with console.capture() as captured:
            render(console)
    finally:
        console.soft_wrap = True
    text = TRAILING.sub(r"\1", captured.get())
    sys.stdout.write(text)
    sys.stdout.flush()


def err() -> Console:
    return _console(True)
