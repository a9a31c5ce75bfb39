"""`anvil status`: what is built, with fingerprints, timings and each stage's figures. It reads and never
writes."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any

from anvil.commands import command, duration, open_project
from anvil.console import out
from anvil.errors import EXIT_OK
from anvil.planning.graph import Node
from anvil.planning.record import StageRecord
from anvil.planning.standing import BAD, Standing, State
from anvil.stages.registry import summary_of

if TYPE_CHECKING:
    from rich.console import Console

    from anvil.project import Project


def add_to(sub) -> None:
    c = command(sub, "status", run, "what is built, with fingerprints and timings")
    c.add_argument("--json", action="store_true", help="per-stage JSON with artifact paths")
    c.add_argument("--verbose", "-v", action="store_true", help="when each stage ran and all its metrics")


def run(args) -> int:
    rows = status_rows(open_project(args.recipe))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        status_table(rows, out(), args.verbose)
    return EXIT_OK


def status_rows(project: Project) -> list[dict[str, Any]]:
    records, standing = project.state.load(), project.standings()
    rows = []
    for node in project.graph.order():
        record: StageRecord | None = records.get(node.id)
        rows.append(
            {
                "stage": node.id,
                **standing[node.id].to_json(),
                "model": node.model,
                "kind": node.kind,
                "built": record is not None,
                "available": node.available,
                "outcome": record.outcome.value if record else None,
                "fingerprint": record.fingerprint if record else None,
                "started": record.started if record else None,
                "duration_s": record.duration_s if record else None,
                "artifact": str(project.store.artifact(record.fingerprint)) if record and not node.resource else None,
                "summary": summary_of(record) if record else None,
                "metrics": record.metrics if record else {},
                "problem": problem(project, node, record, standing[node.id]) if record else None,
                "foreign": standing[node.id].state is State.FOREIGN,
            }
        )
    return rows


def problem(project: Project, node: Node, record: StageRecord, standing: Standing) -> str | None:
    """What is wrong with a record: a server as the standing probed it (not probed twice), an artifact
    looked for."""
    if node.resource:
        return standing.reason if standing.state in (State.DOWN, State.FOREIGN) else None
    return project.problem(record, resource=False)


def status_table(rows: list[dict], console: Console, verbose: bool = False) -> None:
    """A line per stage: its state, fingerprint, time and the figures that matter for its kind. A result
    that does not fit the terminal goes on the lines below, wrapped, never cut; `verbose` adds when it ran
    and every metric."""

    widths = {"stage": max((len(row["stage"]) for row in rows), default=5), "state": 7, "fingerprint": 11}
    widths |= ({"started": 16} if verbose else {}) | {"took": 6}
    indent = sum(widths.values()) + 2 * len(widths)
    room = console.width - indent - 1
    console.print(_line(widths, list(widths), "result"), style="bold", markup=False, highlight=False)
    for row in rows:
        took = duration(row["duration_s"]) if row["duration_s"] is not None else ""
        cells = [row["stage"], row["state"], (row["fingerprint"] or "")[:8]]
        cells += [(row["started"] or "")[:16].replace("T", " ")] if verbose else []
        style = "red" if row["state"] in BAD else "yellow" if row["state"] == "warned" or not row["current"] else None
        result = result_of(row)
        scalars = ", ".join(f"{k}={v}" for k, v in row["metrics"].items() if not isinstance(v, dict | list))
        below = [result, scalars] if verbose else [result] if len(result) > room else []
        console.print(
            _line(widths, [*cells, took], "" if below else result), style=style, markup=False, highlight=False
        )
        for text in filter(None, below):
            for piece in textwrap.wrap(text, max(console.width - 5, 20)):
                console.print("    " + piece, style=style, markup=False, highlight=False)
    if any(not row["available"] for row in rows):
        console.print("n/a: this anvil cannot build that kind of stage yet")


def result_of(row: dict) -> str:
    """What a stage's row says: why it is not simply built (and, for figures that are not current, when
    they were built), then its figures."""
    summary = row["summary"] or ""
    if not row["built"]:
        return row["reason"]
    if not row["current"]:
        when = (row["started"] or "")[:16].replace("T", " ")
        return f"{row['reason']}; as built {when}: {summary}" if summary else row["reason"]
    if row["reason"] and row["reason"] not in summary:
        return f"{row['reason']}; {summary}" if summary else row["reason"]
    return summary


def _line(widths: dict[str, int], cells: list[str], result: str) -> str:
    fixed = [
        cell.rjust(w) if name == "took" else cell.ljust(w)
        for (name, w), cell in zip(widths.items(), cells, strict=True)
    ]
    return ("  ".join(fixed) + "  " + result).rstrip()
