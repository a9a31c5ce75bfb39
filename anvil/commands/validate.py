"""`anvil validate`: a recipe read whole (its models, references and every row of its data, through the
project's row cache), its contamination and its stage graph. Light on purpose: it loads none of the store,
the remote, the estimates or rich, so that a cold validate costs Python, pydantic, the recipe models and the
rows (benchmarks/command_speed.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from anvil.commands import DEFAULT_RECIPE, command
from anvil.console import say, warn
from anvil.errors import EXIT_ERROR, EXIT_OK, AnvilError, InvalidInput
from anvil.recipe import contamination, rows
from anvil.recipe.load import load_recipe
from anvil.recipe.toml import toml_file
from anvil.stages.registry import build_graph
from anvil.state.project_state import ProjectState

if TYPE_CHECKING:
    from anvil.planning.graph import Graph
    from anvil.recipe.load import LoadedRecipe


def add_to(sub) -> None:
    c = command(sub, "validate", run, "check recipes, their references and their data files", recipe=False)
    c.add_argument("recipes", nargs="*", help="recipe files (default: anvil.toml)")
    c.add_argument("--json", action="store_true", help="machine-readable results")


@dataclass(frozen=True)
class Checked:
    loaded: LoadedRecipe
    graph: Graph
    warning: str | None  # evaluation prompts found in training data


def check(recipe_path: str) -> Checked:
    """The recipe checked completely, or InvalidInput listing every problem (contamination among them when the
    recipe makes it an error); what was learnt is kept in the project's stat cache only when it is valid."""

    toml_file(Path(recipe_path), "recipe")  # before its state folder is named from its resolved path
    hashes = ProjectState(Path(recipe_path)).hashes
    loaded = load_recipe(recipe_path, check_rows=rows.cached(hashes))
    warning = contamination.warning(loaded, hashes, recipe_path)
    graph = build_graph(loaded.recipe, loaded.suites)
    hashes.save()
    return Checked(loaded, graph, warning)


def run(args) -> int:
    results, status = [], EXIT_OK
    for path in args.recipes or [DEFAULT_RECIPE]:
        try:
            checked = check(path)  # every row checked, through the project's row cache
            warnings = [checked.warning] if checked.warning else []
            if checked.warning:
                warn(f"{path}: eval.contamination: {checked.warning}")
            results.append({"file": path, "valid": True, "problems": [], "warnings": warnings})
            if not args.json:
                r = checked.loaded.recipe
                say(
                    f"{path}: valid ({len(r.models)} models, {len(r.datasets)} datasets, "
                    f"{len(checked.graph.nodes)} stages)"
                )
        except AnvilError as e:
            status = EXIT_ERROR
            said = str(e) if str(e).startswith(f"{path}: ") else f"{path}: {e}"
            problems = [str(p) for p in e.problems] if isinstance(e, InvalidInput) else [said]
            results.append({"file": path, "valid": False, "problems": problems})
            if not args.json:
                say("\n".join(problems), stderr=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return status
