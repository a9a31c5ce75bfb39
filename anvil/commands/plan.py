"""`anvil plan`: what apply would do and why, with each change's time and memory; `-out FILE` saves it for
`anvil apply FILE`. A plan reads and changes nothing (the stat cache aside): no lock, no tidying, no page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from anvil.commands import command, contaminated, duration, open_project, selection
from anvil.console import lines, say, warn
from anvil.errors import EXIT_CHANGES, EXIT_OK, AnvilError
from anvil.estimates.for_project import size, too_big
from anvil.planning.graph import parse_stage_id
from anvil.planning.plan import Act
from anvil.planning.saved import to_saved
from anvil.planning.standing import State
from anvil.recipe.sweep import variants
from anvil.stages.registry import BY_KIND
from anvil.state.atomic import write_json

if TYPE_CHECKING:
    from rich.console import Console

    from anvil.console import Plain
    from anvil.planning.plan import Plan
    from anvil.planning.record import StageRecord
    from anvil.planning.standing import Standing
    from anvil.project import Project


def add_to(sub) -> None:
    c = command(sub, "plan", run, "show what apply would do, and why")
    selection(c)
    c.add_argument("--json", action="store_true", help="the plan as JSON")
    c.add_argument(
        "-out", "--out", metavar="FILE", help="save the plan: `anvil apply FILE` runs exactly it, or refuses"
    )
    c.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when nothing to do, 2 when changes are pending, 1 on error",
    )


def run(args) -> int:
    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise AnvilError(f"{args.out}: cannot write the plan there (no such folder)")
    project = open_project(args.recipe)
    contaminated(project, args.recipe)
    plan = project.plan(args.target, args.replace, args.exclude)
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        plan_lines(plan, lines(), project.state.load(), args.verbose, project.standings(probed=plan))
        sweep_lines(project, plan, lines())
        concurrency_lines(project, plan, lines())
    memory_lines(project, plan, "apply will refuse")
    warning_lines(project.shared.warnings + preflight_lines(project, plan))
    if args.out:
        request = {"targets": args.target, "replace": args.replace, "exclude": args.exclude}
        saved = to_saved(plan, str(Path(args.recipe).resolve()), project.state.load(), request)
        write_json(Path(args.out), saved)  # Unwritable names the file and why
        say(
            f"\nSaved the plan to {args.out}: `anvil apply {args.out}` runs exactly this plan, or nothing if "
            "anything it was made from changes.",
            stderr=args.json,
        )
    return EXIT_CHANGES if args.detailed_exitcode and plan.pending else EXIT_OK


def plan_lines(
    plan: Plan,
    console: Console | Plain,
    records: dict[str, StageRecord] | None = None,
    verbose: bool = False,
    standings: dict[str, Standing] | None = None,
) -> None:
    """The plan, a line per stage; a stage that summarises its last result (a gate) shows it too, and a
    process only as `standings` found it (probed). Its reasons are summarised unless `verbose` (all of them
    are in `plan --json`)."""

    style = {
        Act.CREATE: "green",
        Act.RERUN: "yellow",
        Act.RESTORE: "cyan",
        Act.UP_TO_DATE: "dim",
        Act.ORPHANED: "red",
        Act.UNAVAILABLE: "magenta",
        Act.BLOCKED: "magenta",
    }
    for action in plan.actions:
        line = action.line(verbose)
        if (guess := plan.estimates.get(action.stage)) is not None and action.act is not Act.RESTORE:
            figures = [
                f"~{duration(guess.seconds)}" if guess.seconds is not None else "",
                size(guess.memory_bytes) if guess.memory_bytes is not None else "",
            ]
            line += f"  ({', '.join(filter(None, figures))})" if any(figures) else ""
        record = (records or {}).get(action.stage)
        stage = BY_KIND.get(action.kind)
        if record is not None and stage is not None and stage.summary is not None and stage.in_plan:
            standing = (standings or {}).get(action.stage)
            if stage.stop is None:
                line += f"  [last: {stage.summary(record)}]"
            elif standing is not None and standing.state in (State.UP, State.WARNED):
                line += f"  [running: {stage.summary(record)}]"
            elif standing is not None:
                line += f"  [{standing.state.value}: {standing.reason}]"
        console.print(line, style=style[action.act], markup=False, highlight=False)
    counts = plan.counts()
    summary = ", ".join(f"{n} {act.replace('_', ' ')}" for act, n in counts.items() if n)
    if plan.changes:
        console.print(f"\nPlan: {summary}.", markup=False, highlight=False)
        if (total := plan.estimated_seconds()) is not None and total > 0:
            bases = sorted({e.basis for e in plan.estimates.values() if e.basis not in ("", "no work", "restore")})
            evaluating = plan.evaluation_seconds()
            share = f"; evaluation {duration(evaluating)} of it ({evaluating / total:.0%})" if evaluating else ""
            console.print(
                f"Estimated time: {duration(total)} (from {', '.join(bases) or 'nothing yet'}){share}.",
                markup=False,
                highlight=False,
            )
    else:
        console.print(
            f"\nNo changes: everything that can be built is up to date ({summary}).", markup=False, highlight=False
        )
    for action in (a for a in plan.actions if a.act is Act.BLOCKED):
        console.print(
            f"Held back: {action.stage} ({action.reasons[0]}).", style="magenta", markup=False, highlight=False
        )


def sweep_lines(project, plan: Plan, console: Console | Plain) -> None:
    """Each sweep's expansion, with what its variants' changes cost: time, and the largest peak (variants run
    one after another, never side by side)."""

    for name, model in project.loaded.recipe.models.items():
        if not model.matrix:
            continue
        swept = variants(name, model)
        mine = [e for sid, e in plan.estimates.items() if parse_stage_id(sid)[1] in swept]
        seconds = sum(e.seconds or 0.0 for e in mine)
        peak = max((e.memory_bytes or 0.0 for e in mine), default=0.0)
        cost = f"; its changes ~{duration(seconds)}, peak {size(peak)} (one variant at a time)" if mine else ""
        console.print(
            f"Sweep {name}: {len(swept)} variants ({', '.join(swept)}){cost}; {name} is the one "
            f"{name}.select picks by {model.select.metric}.",
            markup=False,
            highlight=False,
        )  # type: ignore[union-attr]


def concurrency_lines(project: Project, plan: Plan, console: Console | Plain) -> None:
    """What `concurrency = "auto"` chose for the stages this plan runs: one line per count chosen, with the
    first such stage's reason."""
    running = {a.stage for a in plan.changes}
    by_count: dict[int, list[str]] = {}
    for stage in project.concurrency:
        if stage in running:
            by_count.setdefault(getattr(project.graph.nodes[stage].options, "concurrency", 1), []).append(stage)
    for stages in by_count.values():
        kinds = ", ".join(dict.fromkeys(s.rpartition(".")[2] for s in stages))
        console.print(
            f"Requests at once (auto) for {kinds}: {project.concurrency[stages[0]]}.", markup=False, highlight=False
        )


def memory_lines(project, plan: Plan, refusal: str) -> None:
    """The stages that cannot fit in memory (apply refuses them) and those close to the limit, on stderr."""
    if not plan.estimates:
        return

    cannot, tight = too_big(plan.estimates, project.loaded)
    if cannot or tight:
        console = lines(stderr=True)
        for line in cannot:
            console.print(f"! {line}: {refusal}", style="red", markup=False, highlight=False)
        for line in tight:
            console.print(f"! {line}: close to the limit", style="yellow", markup=False, highlight=False)


def preflight_lines(project: Project, plan: Plan) -> list[str]:
    """What each stage the plan would run warns of before apply tries it (a port another process holds)."""
    records, found = project.state.load(), list[str]()
    for action in plan.changes:
        stage, node = BY_KIND.get(action.kind), project.graph.nodes.get(action.stage)
        if stage is not None and stage.preflight is not None and node is not None:
            found += filter(None, [stage.preflight(node, records.get(action.stage))])
    return found


def warning_lines(lines: list[str]) -> None:
    for line in lines:
        warn(line)
