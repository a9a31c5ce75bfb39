"""The commands, one module each (mlx-lm's habit: a module per verb). Each has `add_to(subparsers)`, which
declares its arguments and sets `run`, and `run(args) -> int`; it imports what it needs when it runs, so
that a light command (`validate`, `plan --json`) never loads the store's backends or rich. The helpers
several commands share are here; anvil/cli.py lists the commands."""

from __future__ import annotations

import argparse
import sys

from anvil.console import warn
from anvil.errors import EXIT_ERROR

DEFAULT_RECIPE = "anvil.toml"


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2, which `plan --detailed-exitcode` reserves for "changes"
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def command(sub, name: str, run, help: str, recipe: bool = True) -> argparse.ArgumentParser:
    """A subcommand that runs `run`, with the recipe as its optional positional argument unless `recipe` is
    False."""
    c = sub.add_parser(name, help=help, description=help)
    c.set_defaults(run=run)
    if recipe:
        c.add_argument("recipe", nargs="?", default=DEFAULT_RECIPE, help="recipe file (default: anvil.toml)")
    return c


def selection(c: argparse.ArgumentParser) -> None:
    """--target, --exclude and --replace: which part of the graph `plan` and `apply` look at."""
    for flag, metavar, text in (
        ("--target", "NODE", "limit to a model, dataset or stage and what it needs (repeatable)"),
        ("--exclude", "NODE", "leave out a model, dataset or stage and what needs it (repeatable)"),
        ("--replace", "STAGE", "force a stage to rerun, e.g. v2.train (repeatable)"),
    ):
        c.add_argument(flag, action="append", default=[], metavar=metavar, help=text)
    c.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="every changed field of every stage (lines summarise a collection's changes)",
    )


def port_number(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (expected 1 to 65535)")
    return int(text)


def open_project(recipe: str):
    from anvil.project import open_project as opened  # the store, the remote, the graph: all but validate

    return opened(recipe)


def contaminated(project, shown_as: str) -> None:
    """Warn of evaluation prompts found in training data (the project refuses when the recipe says so)."""
    if text := project.contamination_warning(shown_as):
        warn(f"{shown_as}: eval.contamination: {text}")


def duration(s: float) -> str:
    return f"{s:.1f}s" if s < 60 else (f"{s / 60:.1f}m" if s < 3600 else f"{s / 3600:.1f}h")
