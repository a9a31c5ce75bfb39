"""`anvil gc`: remove the artifacts no stage of any known project refers to."""

from __future__ import annotations

import json

from anvil.commands import command, open_project
from anvil.console import say
from anvil.errors import EXIT_OK


def add_to(sub) -> None:
    c = command(sub, "gc", run, "remove artifacts no stage of the recipe refers to")
    c.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    c.add_argument("--json", action="store_true")


def run(args) -> int:
    found = open_project(args.recipe).gc(args.dry_run)
    if args.json:
        print(json.dumps([{"fingerprint": fp, "bytes": size} for fp, size in found], indent=2))
        return EXIT_OK
    verb = "would remove" if args.dry_run else "removed"
    for fp, nbytes in found:
        say(f"{verb} {fp[:12]} ({nbytes / 1e6:.1f} MB)")
    total = f"{verb} {len(found)} artifacts, {sum(s for _, s in found) / 1e6:.1f} MB"
    say(total if found else "nothing to collect")
    return EXIT_OK
