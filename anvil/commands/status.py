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
    terminal's width (never padded past its text); `verbose` adds when it ran and every metric, wrapped."""
    import textwrap

    widths = {"stage": max((len(row["stage"]) for row in rows), default=5), "state": 7, "fingerprint": 11}
    widths |= ({"started": 16} if verbose else {}) | {"took": 6}
    indent = sum(widths.values()) + 2 * len(widths)
    room = max(console.width - indent - 1, 10)  # only the result gives way to the terminal's width
    console.print(_line(widths, list(widths), "result"), style="bold", markup=False, highlight=False)
    for row in rows:
        state = _state(row)
        took = duration(row["duration_s"]) if row["duration_s"] is not None else ""
        result = row["problem"] or row["summary"] or ""
        cells = [row["stage"], state, (row["fingerprint"] or "")[:8]]
        cells += [(row["started"] or "")[:16].replace("T", " ")] if verbose else []
        style = "red" if state in ("FAILED", "down", "missing") else None
        if not verbose:
            cut = result if len(result) <= room else result[: room - 1] + "…"
            console.print(_line(widths, [*cells, took], cut), style=style, markup=False, highlight=False)
            continue
        # verbose: the whole result and every scalar metric below the row, wrapped to the terminal
        scalars = ", ".join(f"{k}={v}" for k, v in row["metrics"].items() if not isinstance(v, dict | list))
        console.print(_line(widths, [*cells, took], ""), style=style, markup=False, highlight=False)
        for text in filter(None, (result, scalars)):
            for piece in textwrap.wrap(text, max(console.width - 4, 20)):
                console.print("    " + piece, style=style, markup=False, highlight=False)
    if any(not row["available"] for row in rows):
        console.print("n/a: this anvil cannot build that kind of stage yet")


def _line(widths: dict[str, int], cells: list[str], result: str) -> str:
    fixed = [
        cell.rjust(w) if name == "took" else cell.ljust(w)
        for (name, w), cell in zip(widths.items(), cells, strict=True)
    ]
    return ("  ".join(fixed) + "  " + result).rstrip()


def _state(row: dict) -> str:
    if not row["built"]:
        return "–" if row["available"] else "n/a"
    if row["kind"] == "serve":
        return "foreign" if row["foreign"] else "down" if row["problem"] else "up"
    if row["problem"]:
        return "missing"
    return {"failed": "FAILED", "warned": "warned"}.get(row["outcome"], "built")
