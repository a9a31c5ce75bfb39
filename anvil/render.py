"""Human output: plans, status, graphs and the apply progress display (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from anvil.errors import AnvilError
from anvil.estimating import size
from anvil.planning.graph import Graph
from anvil.planning.plan import Act, Action, Plan
from anvil.planning.record import StageRecord
from anvil.stages.registry import BY_KIND

STYLE = {
    Act.CREATE: "green",
    Act.RERUN: "yellow",
    Act.RESTORE: "cyan",
    Act.UP_TO_DATE: "dim",
    Act.ORPHANED: "red",
    Act.UNAVAILABLE: "magenta",
    Act.BLOCKED: "magenta",
}


def plan_lines(plan: Plan, console: Console, records: dict[str, StageRecord] | None = None) -> None:
    """The plan, a line per stage; a stage that summarises its last result (a gate) shows it too."""
    for action in plan.actions:
        line = action.line()
        if (guess := plan.estimates.get(action.stage)) is not None and action.act is not Act.RESTORE:
            figures = [f"~{_seconds(guess.seconds)}" if guess.seconds is not None else "",
                       size(guess.memory_bytes) if guess.memory_bytes is not None else ""]  # fmt: skip
            line += f"  ({', '.join(filter(None, figures))})" if any(figures) else ""
        record = (records or {}).get(action.stage)
        stage = BY_KIND.get(action.kind)
        if record is not None and stage is not None and stage.summary is not None and stage.in_plan:
            line += f"  [{'running: ' if stage.stop else 'last: '}{stage.summary(record)}]"
        console.print(line, style=STYLE[action.act], markup=False, highlight=False)
    counts = plan.counts()
    summary = ", ".join(f"{n} {act.replace('_', ' ')}" for act, n in counts.items() if n)
    if plan.changes:
        console.print(f"\nPlan: {summary}.", highlight=False)
        if (total := plan.estimated_seconds()) is not None and total > 0:
            bases = sorted({e.basis for e in plan.estimates.values() if e.basis not in ("", "no work", "restore")})
            console.print(f"Estimated time: {_seconds(total)} (from {', '.join(bases) or 'nothing yet'}).",
                          highlight=False)  # fmt: skip
    else:
        console.print(f"\nNo changes: everything that can be built is up to date ({summary}).", highlight=False)
    for action in (a for a in plan.actions if a.act is Act.BLOCKED):
        console.print(f"Held back: {action.stage} ({action.reasons[0]}).", style="magenta", highlight=False)


def memory_lines(cannot: list[str], tight: list[str], refusal: str, console: Console) -> None:
    for line in cannot:
        console.print(f"! {line}: {refusal}", style="red", markup=False, highlight=False)
    for line in tight:
        console.print(f"! {line}: close to the limit", style="yellow", markup=False, highlight=False)


def estimate_error(plan: Plan, ran: list[str], records: dict[str, StageRecord]) -> str:
    """How long the stages that ran took against the plan's estimate of them (recorded in the history)."""
    took = sum(records[sid].duration_s for sid in ran if sid in records)
    guessed = {sid: e.seconds for sid in ran if (e := plan.estimates.get(sid)) and e.seconds is not None}
    if not guessed:
        return f"\nTook {_seconds(took)}."
    measured = sum(records[sid].duration_s for sid in guessed if sid in records)
    error = f" ({(sum(guessed.values()) - measured) / measured:+.0%})" if measured > 0 else ""
    some = "" if len(guessed) == len(ran) else f" for the {len(guessed)} of {len(ran)} stages with one"
    return f"\nTook {_seconds(took)}; estimated {_seconds(sum(guessed.values()))}{some}{error}."


def summary_lines(summary: dict, console: Console) -> None:
    """After an apply: what is served, the composites with their deltas, every gate's value and result."""
    for suite, models in summary["scores"].items():
        parts = []
        for model, v in models.items():
            deltas = [f"{v[k]:+.2f} vs {k.removeprefix('delta_vs_')}" for k in ("delta_vs_base", "delta_vs_parent")
                      if v.get(k) is not None]  # fmt: skip
            parts.append(f"{model} {v['composite']:.2f}" + (f" ({', '.join(deltas)})" if deltas else ""))
        console.print(f"\n{suite} composite: " + "; ".join(parts), highlight=False, markup=False)
    for stage, warnings in summary["warnings"].items():
        for warning in warnings:
            console.print(f"! {stage}: {warning}", style="yellow", highlight=False, markup=False)
    for model, gates in summary["gates"].items():
        if not gates:
            continue
        passed = sum(g["passed"] for g in gates)
        console.print(f"{model} gates: {passed} of {len(gates)} passed", highlight=False)
        for g in gates:
            bound = f">= {g['min']:g}" if g["min"] is not None else f"<= {g['max']:g}"
            value = "missing" if g["value"] is None else f"{g['value']:.2f}"
            mark = "✓" if g["passed"] else "✗"
            console.print(f"  {mark} {g['metric']:40.40s} {value:>8s}  needs {bound}", highlight=False, markup=False)


def status_table(rows: list[dict], console: Console, verbose: bool = False) -> None:
    """A line per stage: its state, fingerprint, time and the figures that matter for its kind, cut to the
    terminal's width; `verbose` adds when it ran and every metric, wrapped."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = {"stage": max((len(row["stage"]) for row in rows), default=5), "state": 6, "print": 8}
    columns |= ({"started": 16} if verbose else {}) | {"took": 6}
    for name, width in columns.items():
        table.add_column(name, no_wrap=True, width=width, justify="right" if name == "took" else "left")
    # Only the result gives way to the terminal's width: cut to one line, or wrapped when verbose.
    room = max(console.width - sum(columns.values()) - 2 * len(columns), 10)
    table.add_column("result", no_wrap=not verbose, overflow="fold" if verbose else "ellipsis", max_width=room)
    for row in rows:
        state = _state(row)
        took = _seconds(row["duration_s"]) if row["duration_s"] is not None else ""
        result = row["summary"] or ""
        if verbose and row["metrics"]:
            scalars = ", ".join(f"{k}={v}" for k, v in row["metrics"].items() if not isinstance(v, dict | list))
            result = f"{result}\n{scalars}" if result else scalars
        cells = [row["stage"], state, (row["fingerprint"] or "")[:8]]
        cells += [(row["started"] or "")[:16].replace("T", " ")] if verbose else []
        table.add_row(*cells, took, result, style="red" if state == "FAILED" else None)
    console.print(table)
    if any(not row["available"] for row in rows):
        console.print("n/a: this anvil cannot build that kind of stage yet")


def _state(row: dict) -> str:
    if not row["built"]:
        return "–" if row["available"] else "n/a"
    if row["kind"] == "serve":
        return "up"
    return {"failed": "FAILED", "warned": "warned"}.get(row["outcome"], "built")


def _seconds(s: float) -> str:
    return f"{s:.1f}s" if s < 60 else (f"{s / 60:.1f}m" if s < 3600 else f"{s / 3600:.1f}h")


def mermaid(graph: Graph) -> str:
    lines = ["flowchart LR"]
    for node in graph.order():
        lines.append(f'  {_key(node.id)}["{node.id}"]')
        lines += [f"  {_key(need)} --> {_key(node.id)}" for need in node.deps]
    return "\n".join(lines)


def dot(graph: Graph) -> str:
    lines = ["digraph anvil {", "  rankdir=LR;"]
    for node in graph.order():
        lines.append(f'  "{node.id}";')
        lines += [f'  "{need}" -> "{node.id}";' for need in node.deps]
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
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def event(self, event: str, action: Action, seconds: float) -> None:
        if event == "waiting":
            self.progress.update(self.overall, description=f"apply: {action.stage} (another project builds it)")
            return
        if event == "start":
            self.tasks[action.stage] = self.progress.add_task(f"  {action.stage}", total=100)
            self.progress.update(self.overall, description=f"apply: {action.stage}")
            return
        if action.stage in self.tasks:
            self.progress.remove_task(self.tasks.pop(action.stage))
        self.progress.advance(self.overall)
        text = {
            "done": f"✓ {action.stage} ({seconds:.1f}s)",
            "failed": f"✗ {action.stage} FAILED ({seconds:.1f}s)",
            "warned": f"! {action.stage} ({seconds:.1f}s), with warnings",
            "restored": f"< {action.stage} restored from the run-cache",
            "removed": f"- {action.stage} removed from the state",
            "blocked": f"! {action.stage} blocked: it needs a stage that failed",
        }[event]
        self.console.print(text, highlight=False, markup=False)

    def stage_progress(self, action: Action, fraction: float, message: str) -> None:
        if action.stage in self.tasks:
            self.progress.update(
                self.tasks[action.stage], completed=100 * fraction, description=f"  {action.stage}: {message}"
            )


def eval_table(report: dict, test: str | None, console: Console) -> None:
    """Scores per suite (tests, categories, composite, deltas), or one test's runs in full."""
    if test is not None:
        runs = [r for r in report["runs"] if r["test"] == test]
        if not runs:
            known = sorted({r["test"] for r in report["runs"]})
            raise AnvilError(f"no test {test!r} in {report['model']}'s results (expected one of: {', '.join(known)})")
        from anvil.evaluation.agent import render

        for r in runs:
            v = r["verdict"]
            console.print(f"[bold]{r['suite']}/{test} run {r['run']}: score {v['score']:.2f}[/bold]")
            console.print(render(r["transcript"]), markup=False, highlight=False)
            console.print(f"judge: {v['rationale']}\n", markup=False, highlight=False)
        return
    for suite, summary in report["suites"].items():
        table = Table("test", "category", "mean", "std", "runs", "gate", "", title=f"{report['model']}: {suite}")
        # A test name is never cut: two names cut to one prefix would be indistinguishable.
        longest = max((len(test_id) for test_id in summary["tests"]), default=4)
        table.columns[0].no_wrap, table.columns[0].min_width = True, longest
        for test_id, t in summary["tests"].items():
            failed = t["gate"] is not None and t["mean"] < t["gate"]
            flags = ("GATE " if failed else "") + ("high variance" if t["high_variance"] else "")
            table.add_row(test_id, t["category"], f"{t['mean']:.2f}", f"{t['std']:.2f}",
                          " ".join(f"{x:.1f}" for x in t["runs"]), "" if t["gate"] is None else f"{t['gate']:.1f}",
                          flags)  # fmt: skip
        console.print(table)
        console.print(f"composite {summary['composite']:.2f}", highlight=False)
        for role in ("base", "parent"):
            delta = summary.get(f"delta_vs_{role}")
            if delta:
                console.print(f"delta vs {role} ({report['against'][role]}): {delta['composite']:+.2f}"
                              f"{_significance(delta['significance']['composite'])}", highlight=False)  # fmt: skip
        category_table(summary, report["against"], console)
    knowledge_table(report, console)


def category_table(summary: dict, against: dict, console: Console) -> None:
    """Category scores with their deltas vs base and parent (p-value); a drop vs the parent is flagged."""
    table = Table("category", "score", "vs base", "p", "vs parent", "p", "")
    table.columns[0].no_wrap = True
    deltas = {role: summary.get(f"delta_vs_{role}") or {} for role in ("base", "parent")}
    for category, score in summary["categories"].items():
        cells, regressed = [category, f"{score:.2f}"], False
        for role, delta in deltas.items():
            d = delta.get("categories", {}).get(category)
            p = delta.get("significance", {}).get("categories", {}).get(category, {}).get("p_value")
            cells += ["" if d is None else f"{d:+.2f}", "" if p is None else f"{p:.2f}"]
            regressed |= role == "parent" and d is not None and d < 0
        table.add_row(*cells, f"regressed vs {against['parent']}" if regressed else "",
                      style="red" if regressed else None)  # fmt: skip
    console.print(table)


def _significance(s: dict, unit: float = 1.0, suffix: str = "") -> str:
    return (f"  p={s['p_value']:.2f}  95% CI [{s['ci_low'] * unit:+.2f}{suffix}, "
            f"{s['ci_high'] * unit:+.2f}{suffix}]")  # fmt: skip


def knowledge_table(report: dict, console: Console) -> None:
    """The seed's knowledge-preservation lines: `GSM8K-CoT (flexible, n=500)  v1 96.0%  base 96.2%
    -0.2pp  p=0.87`, with the 95% interval, against base and against parent."""
    for name, b in report.get("knowledge", {}).items():
        line = f"{b['title']} ({b['filter']}, n={b['n']}) [{name}]  {report['model']} {100 * b['score']:.1f}%"
        for role in ("base", "parent"):
            delta = b.get(f"delta_vs_{role}")
            if delta:
                line += (f"\n  vs {role} {report['against'][role]} {100 * delta['score']:.1f}%  "
                         f"{100 * delta['delta']:+.1f}pp{_significance(delta, 100, 'pp')}")  # fmt: skip
        console.print(line, highlight=False, markup=False)


def gc_lines(found: list[tuple[str, int]], dry_run: bool, console: Console) -> None:
    verb = "would remove" if dry_run else "removed"
    for fp, nbytes in found:
        console.print(f"{verb} {fp[:12]} ({nbytes / 1e6:.1f} MB)")
    total = f"{verb} {len(found)} artifacts, {sum(s for _, s in found) / 1e6:.1f} MB"
    console.print(total if found else "nothing to collect")


def transfer_line(done, verb: str, where: str, console: Console) -> None:
    rate = f", {done.bytes / 1e6 / done.seconds:.1f} MB/s" if done.seconds > 0 and done.bytes else ""
    already = f"; {len(done.present)} already there" if done.present else ""
    console.print(f"{verb} {len(done.moved)} artifacts ({done.bytes / 1e6:.1f} MB in {done.seconds:.1f}s{rate}) "
                  f"{where}{already}", highlight=False, markup=False)  # fmt: skip


def warning_lines(lines: list[str], console: Console) -> None:
    for line in lines:
        console.print(f"warning: {line}", style="yellow", markup=False, highlight=False)
