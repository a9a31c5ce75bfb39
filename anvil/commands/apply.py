"""`anvil apply`: run the stages whose inputs changed, with a progress display and the live dashboard, then
say what is served, the composites and every gate. Given a plan saved by `anvil plan -out FILE` in place of
the recipe, it plans again from the request the plan carries and refuses, with what changed, when anything
it was made from is no longer the same (planning/saved.py compares)."""

from __future__ import annotations

import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvil.commands import command, contaminated, duration, open_project, selection
from anvil.commands.plan import memory_lines, plan_lines, warning_lines
from anvil.commands.report import LivePage
from anvil.commands.summary import serving_line
from anvil.commands.summary import summary as overview
from anvil.console import err, out
from anvil.errors import EXIT_OK, AnvilError, StageFailed, StalePlan
from anvil.planning.saved import differences, looks_saved, parse
from anvil.recipe.files import not_a_file
from anvil.recipe.load import shown
from anvil.stages import gate

if TYPE_CHECKING:
    from rich.console import Console

    from anvil.planning.plan import Action, Plan
    from anvil.planning.record import StageRecord
    from anvil.planning.standing import Standing
    from anvil.project import Project


def add_to(sub) -> None:
    c = command(
        sub, "apply", run, "run the stages whose inputs changed (or a saved plan: apply plan.json)", recipe=False
    )
    c.add_argument(
        "recipe",
        nargs="?",
        default="anvil.toml",
        help="recipe file, or a plan saved by `plan -out` (default: anvil.toml)",
    )
    selection(c)


def run(args) -> int:
    project, plan, saved = planned(args.recipe, args.target, args.replace, args.exclude)
    plan_lines(plan, out(), project.state.load(), args.verbose, project.standings())
    memory_lines(project, plan, "refused")
    ended = "Nothing to apply."
    page = LivePage(project, plan)
    failure: AnvilError | None = None
    if plan.changes:
        out().print(f"\nDashboard (live while this runs): {shown(page.path)}")
        in_flight = "pending"  # interrupted: the stage in flight resumes on the next apply
        started = time.monotonic()
        try:
            with ApplyDisplay(plan, out()) as display:
                applied = project.apply(
                    plan, both(display.event, page.event), both(display.stage_progress, page.progress), saved=saved
                )
        except AnvilError as e:
            # A stage's error: what did not need it went on (the report too), so the summary below is
            # still the truth. Any other error stopped the apply before it ran anything.
            if not isinstance(e, StageFailed) or e.applied is None:
                in_flight = "failed"
                err().print(f"error: {e}", markup=False)
                return report_failures(project) or e.exit_code
            failure, applied = e, e.applied
        finally:
            page.close(in_flight)
            warning_lines(project.shared.warnings)
        counts = plan.counts()
        held = counts["unavailable"] + counts["blocked"] + len(applied.blocked)
        took = time.monotonic() - started
        out().print(estimate_error(plan, applied.ran, project.state.load(), took), highlight=False)
        note = f"; {held} stage{'s' * (held != 1)} not available or blocked" if held else ""
        errors = f"; {len(applied.errors)} ended in an error" if applied.errors else ""
        kept = f", {len(applied.unchanged)} up to date after all" if applied.unchanged else ""
        ended = (
            f"Applied: {len(applied.ran)} ran, {len(applied.restored)} restored, {len(applied.removed)} "
            f"removed{kept}{errors}{note}."
        )
    standings = project.standings()  # probed once, after the apply: every line below reads it
    code = report_failures(project, standings)  # the failure tables first, the summary, the last line what is served
    summary = overview(project, standings)
    summary_lines(summary, out())
    if not plan.changes:
        page.close()
    out().print(f"\nDashboard: {shown(page.path)}")
    out().print(f"{ended} {serving_line(summary['served'])}")
    if failure is not None:
        for error in applied.errors:
            err().print(f"error: {error}", markup=False)
        return failure.exit_code
    return code


def planned(
    recipe: str, targets: Collection[str], replace: Collection[str], exclude: Collection[str]
) -> tuple[Project, Plan, dict[str, Any] | None]:
    """The project, its plan and the saved plan it was checked against (None for a plan made now)."""

    text = _saved_text(recipe)
    if text is None:
        project = open_project(recipe)
        contaminated(project, recipe)
        return project, project.plan(targets, replace, exclude), None
    if targets or replace or exclude:
        raise AnvilError(f"{recipe} is a saved plan: it carries its own --target, --replace and --exclude")
    saved = parse(text, recipe)
    if _saved_text(saved["recipe"]) is not None:
        raise AnvilError(f"{recipe}: recipe: {saved['recipe']} is a saved plan, not a recipe (the file was edited?)")
    project = open_project(saved["recipe"])
    contaminated(project, saved["recipe"])
    request = saved["request"]
    plan = project.plan(request["targets"], request["replace"], request["exclude"])
    if changed := differences(saved, plan, project.state.load()):
        raise StalePlan(changed)
    return project, plan, saved


def _saved_text(path: str) -> str | None:
    """The text of `path` when it is a saved plan (by its content: Terraform's `-out tfplan` takes any
    name), None for anything else, which is read as a recipe and checked as one."""

    if not_a_file(Path(path)):
        return None
    try:
        with open(path, "rb") as file:
            head = file.read(64)
        if not looks_saved(head.decode("utf-8", "replace")):
            return None
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AnvilError(f"{path}: cannot read the saved plan ({getattr(e, 'strerror', None) or e})") from None


def both(*callbacks):
    """One callback that calls each of `callbacks` with the same arguments."""
    return lambda *args: [callback(*args) for callback in callbacks] and None


def report_failures(project: Project, standings: dict[str, Standing] | None = None) -> int:
    """Every failed stage with what failed (the seed's GATE table for a gate), on stderr; the exit code its
    kind gives (EXIT_ERROR for any failed stage, EXIT_GATES when only gates and judges failed)."""

    failures = project.failures(standings)
    for failure in failures:
        err().print(f"\n{failure.stage} FAILED ({failure.means}):\n  " + "\n  ".join(failure.lines), markup=False)
    return min((f.exit_code for f in failures), default=EXIT_OK)


def estimate_error(plan: Plan, ran: list[str], records: dict[str, StageRecord], took: float) -> str:
    """The apply's wall time (downloads and restores too), and how long the stages that ran took against
    the plan's estimate of them (recorded in the history)."""
    guessed = {sid: e.seconds for sid in ran if (e := plan.estimates.get(sid)) and e.seconds is not None}
    measured = sum(records[sid].duration_s for sid in guessed if sid in records)
    if not guessed or measured < 1.0:  # a ratio of fractions of a second says nothing
        return f"\nTook {duration(took)}."
    error = (sum(guessed.values()) - measured) / measured
    many = len(ran) != 1
    some = (
        f"the {len(guessed)} of {len(ran)} stages that ran with an estimate"
        if len(guessed) < len(ran)
        else (f"the {len(ran)} stage{'s' * many} that ran")
    )
    return (
        f"\nTook {duration(took)}; {some} took {duration(measured)}, estimated "
        f"{duration(sum(guessed.values()))} ({error:+.0%})."
    )


def summary_lines(summary: dict, console: Console) -> None:
    """After an apply: what is served, the composites with their deltas, every gate's value and result."""
    for suite, models in summary["scores"].items():
        parts = []
        for model, v in models.items():
            deltas = [
                f"{v[k]:+.2f} vs {k.removeprefix('delta_vs_')}"
                for k in ("delta_vs_base", "delta_vs_parent")
                if v.get(k) is not None
            ]
            stale = f" [{v['stale']}]" if v.get("stale") else ""
            parts.append(f"{model} {v['composite']:.2f}" + (f" ({', '.join(deltas)})" if deltas else "") + stale)
        console.print(f"\n{suite} composite: " + "; ".join(parts), highlight=False, markup=False)
    for stage, warning in summary["warnings"].items():
        console.print(f"! {stage} warned: {warning}", style="yellow", highlight=False, markup=False)
    for model, gates in summary["gates"].items():
        if not gates:
            continue
        passed = sum(g["passed"] for g in gates)
        stale = summary["stale_gates"].get(model)
        console.print(
            f"{model} gates: {passed} of {len(gates)} passed" + (f" [{stale}]" if stale else ""),
            highlight=False,
            markup=False,
        )
        for line in gate.table(gates, marked=True):
            console.print(f"  {line}", highlight=False, markup=False)


class ApplyDisplay:
    """A progress bar over the planned stages, a line per finished stage."""

    def __init__(self, plan: Plan, console: Console):
        from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

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
            "downloaded": f"< {action.stage} downloaded from the remote store ({seconds:.1f}s)",
            "removed": f"- {action.stage} removed from the state",
            "unchanged": f"= {action.stage} up to date after all: what it needs passed on what it did before",
            "blocked": f"! {action.stage} blocked: it needs a stage that failed",
            "error": f"✗ {action.stage} ended in an error (below); what does not need it goes on",
        }[event]
        self.console.print(text, highlight=False, markup=False)

    def stage_progress(self, action: Action, fraction: float, message: str) -> None:
        if action.stage in self.tasks:
            self.progress.update(
                self.tasks[action.stage], completed=100 * fraction, description=f"  {action.stage}: {message}"
            )
