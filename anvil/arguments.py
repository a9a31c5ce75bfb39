"""The command line's grammar: commands, their arguments and help. The functions that run them are in
cli.py; argparse's own errors exit 1 (2 is `plan --detailed-exitcode`'s "changes pending")."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from anvil import __version__
from anvil.errors import EXIT_ERROR

DEFAULT_RECIPE = "anvil.toml"


def port_number(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (expected 1 to 65535)")
    return int(text)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2, which `plan --detailed-exitcode` reserves for "changes"
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def parser(commands: dict[str, Callable]) -> argparse.ArgumentParser:
    """The command line; `commands` maps each command (`eval show` as `eval_show`) to its function."""
    p = _Parser(prog="anvil", description="Fine-tuning lineages as one recipe: plan, apply, gate.")
    p.add_argument("--version", action="version", version=f"anvil {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name, func, help, recipe=True):
        c = sub.add_parser(name, help=help, description=help)
        c.set_defaults(func=func)
        if recipe:
            what = "recipe file, or a plan saved by `plan -out`" if name == "apply" else "recipe file"
            c.add_argument("recipe", nargs="?", default=DEFAULT_RECIPE, help=f"{what} (default: anvil.toml)")
        return c

    c = command("validate", commands["validate"], "check recipes, their references and their data files", recipe=False)
    c.add_argument("recipes", nargs="*", help="recipe files (default: anvil.toml)")
    c.add_argument("--json", action="store_true", help="machine-readable results")
    c = command("schema", commands["schema"], "write schema/ from the recipe models", recipe=False)
    c.add_argument("--check", action="store_true", help="fail when the files in schema/ are stale")
    c.add_argument("--dir", default="schema", help="output folder (default: schema)")
    for name, func, help in (
        ("plan", commands["plan"], "show what apply would do, and why"),
        ("apply", commands["apply"], "run the stages whose inputs changed (or a saved plan: apply plan.json)"),
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
            "--exclude",
            action="append",
            default=[],
            metavar="NODE",
            help="leave out a model, dataset or stage and what needs it (repeatable)",
        )
        c.add_argument(
            "--replace",
            action="append",
            default=[],
            metavar="STAGE",
            help="force a stage to rerun, e.g. v2.train (repeatable)",
        )
    sub.choices["plan"].add_argument("--json", action="store_true", help="the plan as JSON")
    sub.choices["plan"].add_argument("-out", "--out", metavar="FILE",
                                     help="save the plan: `anvil apply FILE` runs exactly it, or refuses")  # fmt: skip
    sub.choices["plan"].add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when nothing to do, 2 when changes are pending, 1 on error",
    )
    serve_help = "run a model behind mlx-vlm's OpenAI-compatible server, in the foreground"
    c = command("serve", commands["serve"], serve_help, recipe=False)
    c.add_argument("model", help="a model node of the recipe (e.g. v2) or a checkpoint folder")
    c.add_argument("--recipe", default=DEFAULT_RECIPE, help="recipe whose [serve] settings apply (default: anvil.toml)")
    c.add_argument("--port", type=port_number, help="override the recipe's port")
    command("down", commands["down"], "stop the server that apply keeps running")
    c = sub.add_parser("eval", help="evaluation results").add_subparsers(dest="eval_command", required=True,
                                                                         parser_class=_Parser)  # fmt: skip
    c = c.add_parser("show", help="scores of a model, or one test's transcripts and rationales")
    c.set_defaults(func=commands["eval_show"])
    c.add_argument("model", help="an evaluated model node, e.g. v2")
    c.add_argument("test", nargs="?", help="a test id: show its transcripts and the judge's rationales")
    c.add_argument("--recipe", default=DEFAULT_RECIPE, help="recipe file (default: anvil.toml)")
    c.add_argument("--json", action="store_true", help="the whole results file")
    c = command("status", commands["status"], "what is built, with fingerprints and timings")
    c.add_argument("--json", action="store_true", help="per-stage JSON with artifact paths")
    c.add_argument("--verbose", "-v", action="store_true", help="when each stage ran and all its metrics")
    c = command("report", commands["report"], "write the dashboard: one self-contained HTML page of the project")
    c.add_argument("--open", action="store_true", help="open it in the default browser")
    c.add_argument("--json", action="store_true", help="print the page's data as JSON")
    command("push", commands["push"], "upload the project's artifacts to the remote store ([store] remote)")
    command("pull", commands["pull"], "download from the remote store what the plan would restore from it")
    c = command("graph", commands["graph"], "print the stage graph")
    c.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    c = command("gc", commands["gc"], "remove artifacts no stage of the recipe refers to")
    c.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    c.add_argument("--json", action="store_true")
    return p
