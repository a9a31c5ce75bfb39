"""`anvil status`: what is built, with fingerprints, timings and each stage's figures. It reads and never
writes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from anvil.commands import command, duration, open_project
from anvil.errors import EXIT_OK

if TYPE_CHECKING:
    from rich.console import Console


def add_to(sub) -> None:
    c = command(sub, "status", run, "what is built, with fingerprints and timings")
    c.add_argument("--json", action="store_true", help="per-stage JSON with artifact paths")
    c.add_argument("--verbose", "-v", action="store_true", help="when each stage ran and all its metrics")


def run(args) -> int:
    rows = open_project(args.recipe).status()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        from anvil.console import out

        status_table(rows, out(), args.verbose)
    return EXIT_OK


def status_table(rows: list[dict], console: Console, verbose: bool = False) -> None:
    """A line per stage: its state, fingerprint, time and the figures that matter for its kind, cut to the
    terminal's width; `verbose` adds when it ran and every metric, wrapped."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = {"stage": max((len(row["stage"]) for row in rows), default=5), "state": 7, "fingerprint": 11}
    columns |= ({"started": 16} if verbose else {}) | {"took": 6}
    for name, width in columns.items():
        table.add_column(name, no_wrap=True, width=width, justify="right" if name == "took" else "left")
    # Only the result gives way to the terminal's width: cut to one line, or wrapped when verbose.
    room = max(console.width - sum(columns.values()) - 2 * len(columns), 10)
    table.add_column("result", no_wrap=not verbose, overflow="fold" if verbose else "ellipsis", max_width=room)
    for row in rows:
        state = _state(row)
        took = duration(row["duration_s"]) if row["duration_s"] is not None else ""
        result = row["problem"] or row["summary"] or ""
        if verbose and row["metrics"]:
            scalars = ", ".join(f"{k}={v}" for k, v in row["metrics"].items() if not isinstance(v, dict | list))
            result = f"{result}\n{scalars}" if result else scalars
        cells = [row["stage"], state, (row["fingerprint"] or "")[:8]]
        cells += [(row["started"] or "")[:16].replace("T", " ")] if verbose else []
        table.add_row(*cells, took, result, style="red" if state in ("FAILED", "down") else None)
    console.print(table)
    if any(not row["available"] for row in rows):
        console.print("n/a: this anvil cannot build that kind of stage yet")


def _state(row: dict) -> str:
    if not row["built"]:
        return "–" if row["available"] else "n/a"
    if row["kind"] == "serve":
        return "foreign" if row["foreign"] else "down" if row["problem"] else "up"
    return {"failed": "FAILED", "warned": "warned"}.get(row["outcome"], "built")
