"""`anvil schema`: write schema/ from the recipe models, or check that it is current (CI)."""

from __future__ import annotations

from pathlib import Path

from anvil.commands import command
from anvil.console import say
from anvil.errors import EXIT_ERROR, EXIT_OK
from anvil.recipe import schema


def add_to(sub) -> None:
    c = command(sub, "schema", run, "write schema/ from the recipe models", recipe=False)
    c.add_argument("--check", action="store_true", help="fail when the files in schema/ are stale")
    c.add_argument("--dir", default="schema", help="output folder (default: schema)")


def run(args) -> int:
    folder = Path(args.dir)
    if args.check:
        stale = schema.stale_files(folder)
        for name in stale:
            say(f"{folder / name}: stale or missing; run `anvil schema` and commit the result", stderr=True)
        return EXIT_ERROR if stale else EXIT_OK
    for path in schema.write_files(folder):
        say(f"wrote {path}")
    return EXIT_OK
