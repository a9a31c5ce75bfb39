"""argv -> one library call -> rendered output -> exit code. Exit codes are documented in the README."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from rich.console import Console

from anvil import __version__
from anvil.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_GATES, EXIT_INTERRUPTED, EXIT_OK, AnvilError, InvalidInput
from anvil.project import open_project, serve_target
from anvil.recipe.load import load_recipe
from anvil.recipe.schema import generated_files, stale_files
from anvil.render import ApplyDisplay, dot, eval_table, mermaid, plan_lines, status_table, summary_lines
from anvil.stages.registry import build_graph

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
DEFAULT_RECIPE = "anvil.toml"


def cmd_validate(args) -> int:
    results, status = [], EXIT_OK
    for path in args.recipes or [DEFAULT_RECIPE]:
        try:
            project = open_project(path)  # every row checked, through the project's row cache
            project.state.hashes.save()
            graph = project.graph
            results.append({"file": path, "valid": True, "problems": []})
            if not args.json:
                r = project.loaded.recipe
                out.print(
                    f"{path}: valid ({len(r.models)} models, {len(r.datasets)} datasets, {len(graph.nodes)} stages)"
                )
        except AnvilError as e:
            status = EXIT_ERROR
            problems = [str(p) for p in e.problems] if isinstance(e, InvalidInput) else [f"{path}: {e}"]
            results.append({"file": path, "valid": False, "problems": problems})
            if not args.json:
                err.print("\n".join(problems), markup=False)
    if args.json:
        print(json.dumps(results, indent=2))
    return status


def cmd_schema(args) -> int:
    folder = Path(args.dir)
    if args.check:
        stale = stale_files(folder)
        for name in stale:
            err.print(f"{folder / name}: stale or missing; run `anvil schema` and commit the result")
        return EXIT_ERROR if stale else EXIT_OK
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in generated_files().items():
            (folder / name).write_text(text, encoding="utf-8")
            out.print(f"wrote {folder / name}")
    except OSError as e:
        raise AnvilError(f"{e.filename or folder}: cannot write the schema there ({e.strerror or e})") from None
    return EXIT_OK


def cmd_plan(args) -> int:
    project = open_project(args.recipe)
    plan = project.plan(args.target, args.replace)
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        plan_lines(plan, out, project.state.load())
    return EXIT_CHANGES if args.detailed_exitcode and plan.pending else EXIT_OK


def cmd_apply(args) -> int:
    project = open_project(args.recipe)
    plan = project.plan(args.target, args.replace)
    plan_lines(plan, out, project.state.load())
    ended = "Nothing to apply."
    if plan.changes:
        out.print()
        try:
            with ApplyDisplay(plan, out) as display:
                applied = project.apply(plan, display.event, display.stage_progress)
        except AnvilError as e:
            err.print(f"error: {e}", markup=False)
            return report_gates(project) or e.exit_code
        counts = plan.counts()
        held = counts["unavailable"] + counts["blocked"] + len(applied.blocked)
        note = f"; {held} stages not available or blocked" if held else ""
        ended = (
            f"Applied: {len(applied.ran)} ran, {len(applied.restored)} restored, {len(applied.removed)} removed{note}."
        )
    code = report_gates(project)  # the failure tables first, then the summary, the last line what is served
    summary = project.summary()
    summary_lines(summary, out)
    served = summary["served"]
    serving = f"{served['model']} at {served['url']}/v1 (model {served['name']!r})" if served else "nothing"
    out.print(f"\n{ended} Serving {serving}.")
    return code


def report_gates(project) -> int:
    """The seed's GATE table for every failed gate of the recipe; EXIT_GATES if there is one."""
    failed = project.failed_gates()
    for stage, lines in failed.items():
        err.print(f"\n{stage} FAILED (not promoted):\n  " + "\n  ".join(lines), markup=False)
    return EXIT_GATES if failed else EXIT_OK


def cmd_eval_show(args) -> int:
    report = open_project(args.recipe).eval_results(args.model)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        eval_table(report, args.test, out)
    return EXIT_OK


def cmd_serve(args) -> int:
    from anvil.backends.server import serve_foreground

    target = serve_target(args.model, args.recipe, args.port)

    def ready(server) -> None:
        out.print(f"serving {args.model} at {server.url}/v1 as model {server.model!r} (OpenAI-compatible); "
                  "Ctrl-C stops it")  # fmt: skip

    serve_foreground(target.folder, target.options, ready, target.name, target.names)
    err.print("the server exited")
    return EXIT_ERROR


def cmd_down(args) -> int:
    project = open_project(args.recipe)
    stopped = project.down()
    for sid in project.forgotten:
        err.print(f"{sid}: its recorded process was started by another project (this state was copied); "
                  "forgot the record, signalled nothing")  # fmt: skip
    out.print(f"stopped {', '.join(stopped)}" if stopped else "nothing running")
    return EXIT_OK


def cmd_status(args) -> int:
    rows = open_project(args.recipe).status()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        status_table(rows, out)
    return EXIT_OK


def cmd_graph(args) -> int:
    loaded = load_recipe(args.recipe)
    graph = build_graph(loaded.recipe, loaded.suites)
    print(dot(graph) if args.format == "dot" else mermaid(graph))
    return EXIT_OK


def cmd_gc(args) -> int:
    found = open_project(args.recipe).gc(args.dry_run)
    if args.json:
        print(json.dumps([{"fingerprint": fp, "bytes": size} for fp, size in found], indent=2))
        return EXIT_OK
    verb = "would remove" if args.dry_run else "removed"
    for fp, size in found:
        out.print(f"{verb} {fp[:12]} ({size / 1e6:.1f} MB)")
    out.print(
        f"{verb} {len(found)} artifacts, {sum(s for _, s in found) / 1e6:.1f} MB" if found else "nothing to collect"
    )
    return EXIT_OK


def port_number(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (expected 1 to 65535)")
    return int(text)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2, which `plan --detailed-exitcode` reserves for "changes"
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="anvil", description="Fine-tuning lineages as one recipe: plan, apply, gate.")
    p.add_argument("--version", action="version", version=f"anvil {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name, func, help, recipe=True):
        c = sub.add_parser(name, help=help, description=help)
        c.set_defaults(func=func)
        if recipe:
            c.add_argument("recipe", nargs="?", default=DEFAULT_RECIPE, help="recipe file (default: anvil.toml)")
        return c

    c = command("validate", cmd_validate, "check recipes, their references and their data files", recipe=False)
    c.add_argument("recipes", nargs="*", help="recipe files (default: anvil.toml)")
    c.add_argument("--json", action="store_true", help="machine-readable results")
    c = command("schema", cmd_schema, "write schema/ from the recipe models", recipe=False)
    c.add_argument("--check", action="store_true", help="fail when the files in schema/ are stale")
    c.add_argument("--dir", default="schema", help="output folder (default: schema)")
    for name, func, help in (
        ("plan", cmd_plan, "show what apply would do, and why"),
        ("apply", cmd_apply, "run the stages whose inputs changed"),
    ):
        c = command(name, func, help)
        c.add_argument(
            "--target",
            action="append",
            default=[],
            metavar="NODE",
            help="limit to a model, dataset or stage and what it needs (repeatable)",
        )
        c.add_argument(
            "--replace",
            action="append",
            default=[],
            metavar="STAGE",
            help="force a stage to rerun, e.g. v2.train (repeatable)",
        )
    sub.choices["plan"].add_argument("--json", action="store_true", help="the plan as JSON")
    sub.choices["plan"].add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when nothing to do, 2 when changes are pending, 1 on error",
    )
    c = command(
        "serve", cmd_serve, "run a model behind mlx-vlm's OpenAI-compatible server, in the foreground", recipe=False
    )
    c.add_argument("model", help="a model node of the recipe (e.g. v2) or a checkpoint folder")
    c.add_argument("--recipe", default=DEFAULT_RECIPE, help="recipe whose [serve] settings apply (default: anvil.toml)")
    c.add_argument("--port", type=port_number, help="override the recipe's port")
    command("down", cmd_down, "stop the server that apply keeps running")
    c = sub.add_parser("eval", help="evaluation results").add_subparsers(dest="eval_command", required=True,
                                                                         parser_class=_Parser)  # fmt: skip
    c = c.add_parser("show", help="scores of a model, or one test's transcripts and rationales")
    c.set_defaults(func=cmd_eval_show)
    c.add_argument("model", help="an evaluated model node, e.g. v2")
    c.add_argument("test", nargs="?", help="a test id: show its transcripts and the judge's rationales")
    c.add_argument("--recipe", default=DEFAULT_RECIPE, help="recipe file (default: anvil.toml)")
    c.add_argument("--json", action="store_true", help="the whole results file")
    c = command("status", cmd_status, "what is built, with fingerprints and timings")
    c.add_argument("--json", action="store_true", help="per-stage JSON with artifact paths")
    c = command("graph", cmd_graph, "print the stage graph")
    c.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    c = command("gc", cmd_gc, "remove artifacts no stage of the recipe refers to")
    c.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    c.add_argument("--json", action="store_true")
    return p


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Python runs so that every `finally` stops what it started."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum, frame):
    raise Stopped(signum)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    try:
        return args.func(args)
    except BrokenPipeError:  # `anvil graph | head -1`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except AnvilError as e:
        err.print(f"error: {e}" if not isinstance(e, InvalidInput) else str(e), markup=False)
        return e.exit_code
    except KeyboardInterrupt as e:
        if args.func is cmd_serve:
            err.print("stopped")
            return EXIT_OK
        err.print("interrupted; finished stages are recorded, the one in flight is discarded")
        return 128 + e.signum if isinstance(e, Stopped) else EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
