"""What `anvil validate` checks, and only that: a recipe read whole (its models, references and every row of
its data, through the project's row cache), its contamination and its stage graph. Light on purpose: a
validate loads none of the store, the remote, the estimates or the console that plan and apply need, so
that a cold validate costs Python, pydantic, the recipe models and the rows (benchmarks/command_speed.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anvil.errors import Problem
from anvil.planning.graph import Graph
from anvil.recipe import contamination
from anvil.recipe.load import LoadedRecipe, RowChecker, load_recipe
from anvil.recipe.rows import count_rows
from anvil.stages.registry import build_graph
from anvil.state.hashing import StatCache
from anvil.state.project_state import ProjectState


def cached_rows(hashes: StatCache) -> RowChecker:
    """Row validation remembered by content: an unchanged file is not parsed again."""

    def check_rows(path: Path, shown_as: str, kind: str) -> tuple[int, list[Problem]]:
        key = f"rows:{kind}:{hashes.file(path)}"
        if key in hashes.facts:
            return hashes.facts[key], []
        valid, problems = count_rows(path, shown_as, kind)
        if not problems:
            hashes.facts[key] = valid
            hashes.dirty = True
        return valid, problems

    return check_rows


@dataclass(frozen=True)
class Checked:
    loaded: LoadedRecipe
    graph: Graph
    warning: str | None  # evaluation prompts found in training data


def check(recipe_path: str) -> Checked:
    """The recipe checked completely, or InvalidInput listing every problem (contamination among them when the
    recipe makes it an error); what was learnt is kept in the project's stat cache only when it is valid."""
    hashes = ProjectState(Path(recipe_path)).hashes
    loaded = load_recipe(recipe_path, check_rows=cached_rows(hashes))
    warning = contamination.warning(loaded, hashes, recipe_path)
    graph = build_graph(loaded.recipe, loaded.suites)
    hashes.save()
    return Checked(loaded, graph, warning)
