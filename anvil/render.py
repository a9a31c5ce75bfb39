"""Human output: plans, status, graphs and the apply progress display (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from anvil.planning.graph import Graph
from anvil.planning.plan import Act, Action, Plan

STYLE = {
    Act.CREATE: "green",
    Act.RERUN: "yellow",
    Act.RESTORE: "cyan",
    Act.UP_TO_DATE: "dim",
    Act.ORPHANED: "red",
    Act.UNAVAILABLE: "magenta",
}


def plan_lines(plan: Plan, console: Console) -> None:
    for action in plan.actions:
        console.print(action.line(), style=STYLE[action.act], markup=False, highlight=False)
    counts = plan.counts()
    summary = ", ".join(f"{n} {act.replace('_', ' ')}" for act, n in counts.items() if n)
    if plan.changes:
        console.print(f"\nPlan: {summary}.", highlight=False)
    else:
        console.print(f"\nNo changes: everything that can be built is up to date ({summary}).", highlight=False)


def status_table(rows: list[dict], console: Console) -> None:
    table = Table("stage", "built", "fingerprint", "started", "took", "metrics")
    table.columns[0].no_wrap = table.columns[2].no_wrap = True
    for row in rows:
        built = "yes" if row["built"] else ("no" if row["available"] else "n/a")
        metrics = ", ".join(f"{k}={v}" for k, v in row["metrics"].items() if not isinstance(v, dict | list))
        took = f"{row['duration_s']:.1f}s" if row["duration_s"] is not None else ""
        started = (row["started"] or "")[:16].replace("T", " ")
        table.add_row(row["stage"], built, (row["fingerprint"] or "")[:12], started, took, metrics)
    console.print(table)
    if any(not row["available"] for row in rows):
        console.print("n/a: this anvil cannot build that kind of stage yet")


def mermaid(graph: Graph) -> str:
    lines = ["flowchart LR"]
    for node in graph.order():
        lines.append(f'  {_key(node.id)}["{node.id}"]')
        lines += [f"  {_key(need)} --> {_key(node.id)}" for need in node.needs]
    return "\n".join(lines)


def dot(graph: Graph) -> str:
    lines = ["digraph anvil {", "  rankdir=LR;"]
    for node in graph.order():
        lines.append(f'  "{node.id}";')
        lines += [f'  "{need}" -> "{node.id}";' for need in node.needs]
    return "\n".join(lines + ["}"])


def _key(stage: str) -> str:
    return stage.replace(".", "_").replace("-", "_")


class ApplyDisplay:
    """A progress bar over the planned stages, a line per finished stage."""

    def __init__(self, plan: Plan, console: Console):
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.overall = self.progress.add_task("apply", total=len(plan.changes))
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def event(self, event: str, action: Action, seconds: float) -> None:
        if event == "start":
            self.tasks[action.stage] = self.progress.add_task(f"  {action.stage}", total=100)
            self.progress.update(self.overall, description=f"apply: {action.stage}")
            return
        if action.stage in self.tasks:
            self.progress.remove_task(self.tasks.pop(action.stage))
        self.progress.advance(self.overall)
        text = {
            "done": f"✓ {action.stage} ({seconds:.1f}s)",
            "restored": f"< {action.stage} restored from the run-cache",
            "removed": f"- {action.stage} removed from the state",
        }[event]
        self.console.print(text, highlight=False, markup=False)

    def stage_progress(self, action: Action, fraction: float, message: str) -> None:
        if action.stage in self.tasks:
            self.progress.update(
                self.tasks[action.stage], completed=100 * fraction, description=f"  {action.stage}: {message}"
            )
