"""argv -> one library call -> rendered output -> exit code. Exit codes are documented in the README.

Each command imports what it needs when it runs: `validate` (which CI and editors run all day) loads the
recipe models and its rows, not the store, the estimates, the stages' backends or rich's console."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from anvil import errors, replay
from anvil.arguments import DEFAULT_RECIPE, parser
from anvil.console import err, out, say, warn
from anvil.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_GATES, EXIT_INTERRUPTED, EXIT_OK, AnvilError, InvalidInput


def cmd_validate(args) -> int:
    from anvil import checking

    results, status = [], EXIT_OK
    for path in args.recipes or [DEFAULT_RECIPE]:
        try:
            checked = checking.check(path)  # every row checked, through the project's row cache
            warnings = [checked.warning] if checked.warning else []
            if checked.warning:
                warn(f"{path}: eval.contamination: {checked.warning}")
            results.append({"file": path, "valid": True, "problems": [], "warnings": warnings})
            if not args.json:
                r = checked.loaded.recipe
                say(f"{path}: valid ({len(r.models)} models, {len(r.datasets)} datasets, "
                    f"{len(checked.graph.nodes)} stages)")  # fmt: skip
        except AnvilError as e:
            status = EXIT_ERROR
            problems = [str(p) for p in e.problems] if isinstance(e, InvalidInput) else [f"{path}: {e}"]
            results.append({"file": path, "valid": False, "problems": problems})
            if not args.json:
                say("\n".join(problems), stderr=True)
    if args.json:
        print(json.dumps(results, indent=2))
    replay.allow([])  # files alone made this answer
    return status


def cmd_push(args) -> int:
    from anvil import render, sharing

    done, url = sharing.push_all(open_project(args.recipe), args.recipe)
    render.transfer_line(done, "pushed", f"to {url}", out())
    return EXIT_OK


def cmd_pull(args) -> int:
    from anvil import render, sharing

    done, url = sharing.pull_needed(open_project(args.recipe), args.recipe)
    render.transfer_line(done, "pulled", f"from {url} into the run-cache", out())
    for line in done.failed:
        err().print(f"error: {line}", markup=False)
    return EXIT_ERROR if done.failed else EXIT_OK


def cmd_schema(args) -> int:
    from anvil.recipe import schema

    folder = Path(args.dir)
    if args.check:
        stale = schema.stale_files(folder)
        for name in stale:
            say(f"{folder / name}: stale or missing; run `anvil schema` and commit the result", stderr=True)
        return EXIT_ERROR if stale else EXIT_OK
    for path in schema.write_files(folder):
        say(f"wrote {path}")
    return EXIT_OK


def open_project(recipe: str):
    from anvil.project import open_project as opened  # the store, the remote, the graph: all but validate

    return opened(recipe)


def contaminated(project, shown_as: str) -> None:
    """Warn of evaluation prompts found in training data (the project refuses when the recipe says so)."""
    if text := project.contamination_warning(shown_as):
        warn(f"{shown_as}: eval.contamination: {text}")


def cmd_plan(args) -> int:
    from anvil import estimating, render
    from anvil.planning.saved import to_saved
    from anvil.report import live
    from anvil.state.atomic import write_json
    from anvil.state.lock import is_held

    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise AnvilError(f"{args.out}: cannot write the plan there (no such folder)")
    project = open_project(args.recipe)
    contaminated(project, args.recipe)
    plan = project.plan(args.target, args.replace, args.exclude)
    if not args.target and not args.exclude:
        live.settle(project, plan)
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        render.plan_lines(plan, out(), project.state.load())
    render.memory_lines(*estimating.too_big(plan.estimates, project.loaded), "apply will refuse", err())
    render.warning_lines(project.shared.warnings, err())
    if not (args.out or project.shared.remote or is_held(project.state.folder / "lock")):
        replay.allow(project.probes())  # nothing but files and these processes made this answer
    if args.out:
        request = {"targets": args.target, "replace": args.replace, "exclude": args.exclude}
        saved = to_saved(plan, str(Path(args.recipe).resolve()), project.state.load(), request)
        try:
            write_json(Path(args.out), saved)
        except OSError as e:
            raise AnvilError(f"{args.out}: cannot write the plan there ({e.strerror or e})") from None
        say(f"\nSaved the plan to {args.out}: `anvil apply {args.out}` runs exactly this plan, or nothing if "
            "anything it was made from changes.", stderr=args.json)  # fmt: skip
    return EXIT_CHANGES if args.detailed_exitcode and plan.pending else EXIT_OK


def cmd_apply(args) -> int:
    from anvil import estimating, render
    from anvil.planned import planned
    from anvil.recipe.load import shown
    from anvil.report.live import LivePage

    project, plan, saved = planned(args.recipe, args.target, args.replace, args.exclude, contaminated)
    render.plan_lines(plan, out(), project.state.load())
    render.memory_lines(*estimating.too_big(plan.estimates, project.loaded), "refused", err())
    ended = "Nothing to apply."
    page = LivePage(project, plan)
    if plan.changes:
        out().print(f"\nDashboard (live while this runs): {shown(page.path)}")
        in_flight = "pending"  # interrupted: the stage in flight resumes on the next apply
        try:
            with render.ApplyDisplay(plan, out()) as display:
                applied = project.apply(plan, both(display.event, page.event),
                                        both(display.stage_progress, page.progress), saved=saved)  # fmt: skip
        except AnvilError as e:
            in_flight = "failed"
            err().print(f"error: {e}", markup=False)
            return report_gates(project) or e.exit_code
        finally:
            page.close(in_flight)
            render.warning_lines(project.shared.warnings, err())
        counts = plan.counts()
        held = counts["unavailable"] + counts["blocked"] + len(applied.blocked)
        out().print(render.estimate_error(plan, applied.ran, project.state.load()), highlight=False)
        note = f"; {held} stages not available or blocked" if held else ""
        ended = (
            f"Applied: {len(applied.ran)} ran, {len(applied.restored)} restored, {len(applied.removed)} removed{note}."
        )
    code = report_gates(project)  # the failure tables first, then the summary, the last line what is served
    summary = project.summary()
    render.summary_lines(summary, out())
    served = summary["served"]
    serving = f"{served['model']} at {served['url']}/v1 (model {served['name']!r})" if served else "nothing"
    if not plan.changes:
        page.close()
    out().print(f"\nDashboard: {shown(page.path)}")
    out().print(f"{ended} Serving {serving}.")
    return code


def both(*callbacks):
    """One callback that calls each of `callbacks` with the same arguments."""
    return lambda *args: [callback(*args) for callback in callbacks] and None


def cmd_report(args) -> int:
    import webbrowser

    from anvil.recipe.load import shown
    from anvil.report import live

    project = open_project(args.recipe)
    path = live.write(project)
    if args.json:
        print(path.with_suffix(".json").read_text(), end="")
    else:
        out().print(f"Dashboard: {shown(path)}")
    if args.open and not webbrowser.open(path.as_uri()):
        say(f"no browser found here: open {path.as_uri()} yourself", stderr=True)
    return EXIT_OK


def report_gates(project) -> int:  # the seed's GATE table for every failed gate; EXIT_GATES if there is one
    failed = project.failed_gates()
    for stage, lines in failed.items():
        err().print(f"\n{stage} FAILED (not promoted):\n  " + "\n  ".join(lines), markup=False)
    return EXIT_GATES if failed else EXIT_OK


def cmd_eval_show(args) -> int:
    from anvil import render

    report = open_project(args.recipe).eval_results(args.model)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        render.eval_table(report, args.test, out())
    return EXIT_OK


def cmd_serve(args) -> int:
    from anvil.backends.server import serve_foreground
    from anvil.serve_target import serve_target

    target = serve_target(args.model, args.recipe, args.port)

    def ready(server) -> None:
        say(f"serving {args.model} at {server.url}/v1 as model {server.model!r} (OpenAI-compatible); Ctrl-C stops it")

    serve_foreground(target.folder, target.options, ready, target.name, target.names)
    say("the server exited", stderr=True)
    return EXIT_ERROR


def cmd_down(args) -> int:
    project = open_project(args.recipe)
    stopped = project.down()
    for sid in project.forgotten:
        err().print(f"{sid}: its recorded process was started by another project (this state was copied); "
                  "forgot the record, signalled nothing")  # fmt: skip
    say(f"stopped {', '.join(stopped)}" if stopped else "nothing running")
    return EXIT_OK


def cmd_status(args) -> int:
    from anvil import render
    from anvil.report import live

    project = open_project(args.recipe)
    rows = project.status()
    live.settle(project, project.plan())
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        render.status_table(rows, out(), args.verbose)
    return EXIT_OK


def cmd_graph(args) -> int:
    from anvil import render
    from anvil.recipe.load import load_recipe
    from anvil.stages.registry import build_graph

    loaded = load_recipe(args.recipe)
    graph = build_graph(loaded.recipe, loaded.suites)
    print(render.dot(graph) if args.format == "dot" else render.mermaid(graph))
    return EXIT_OK


def cmd_gc(args) -> int:
    from anvil import render

    found = open_project(args.recipe).gc(args.dry_run)
    if args.json:
        print(json.dumps([{"fingerprint": fp, "bytes": size} for fp, size in found], indent=2))
    else:
        render.gc_lines(found, args.dry_run, out())
    return EXIT_OK


COMMANDS = {"validate": cmd_validate, "schema": cmd_schema, "plan": cmd_plan, "apply": cmd_apply, "report": cmd_report,
            "serve": cmd_serve, "down": cmd_down, "eval_show": cmd_eval_show, "status": cmd_status,
            "graph": cmd_graph, "gc": cmd_gc, "push": cmd_push, "pull": cmd_pull}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return run(parser(COMMANDS).parse_args(argv))


def run(args) -> int:
    """Run parsed arguments (anvil/main.py parses once, for the kept answers too)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, errors.Stopped.raise_it)
    try:
        return args.func(args)
    except BrokenPipeError:  # `anvil graph | head -1`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except AnvilError as e:
        say(f"error: {e}" if not isinstance(e, InvalidInput) else str(e), stderr=True)
        return e.exit_code
    except KeyboardInterrupt as e:
        if args.func is cmd_serve:
            say("stopped", stderr=True)
            return EXIT_OK
        say("interrupted; finished stages are recorded, the one in flight is discarded", stderr=True)
        return 128 + e.signum if isinstance(e, errors.Stopped) else EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
