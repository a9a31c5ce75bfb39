"""Loading a recipe: TOML syntax, then the pydantic models, then cross-references and files, with
every problem reported at once as `FILE:LINE:COL: key.path: what is wrong (what is expected)`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from anvil.errors import InvalidInput, Problem
from anvil.recipe.checks import Finding, check_files, check_references
from anvil.recipe.models import Recipe
from anvil.recipe.rows import count_rows
from anvil.recipe.suite import SuiteTest
from anvil.recipe.sweep import expand
from anvil.recipe.toml import parse_toml

RowChecker = Callable[[Path, str, str], tuple[int, list[Problem]]]  # (path, shown as, kind) -> valid rows, problems


@dataclass(frozen=True)
class LoadedRecipe:
    path: Path  # absolute path of the recipe file
    recipe: Recipe
    suites: dict[str, list[SuiteTest]] = field(default_factory=dict)  # by path as `eval.suites` writes it

    @property
    def root(self) -> Path:
        """Folder that relative paths in the recipe are resolved against."""
        return self.path.parent


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when it is below it."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:
        return str(path)


def load_recipe(path: str | Path, check_rows: RowChecker = count_rows) -> LoadedRecipe:
    """Parse and validate a recipe completely, or raise InvalidInput listing every problem."""
    path = Path(path)
    parsed = parse_toml(path, Recipe, "recipe")
    recipe = parsed.value
    root = path.resolve().parent
    findings: list[Finding | Problem] = list(check_references(recipe))
    suites: dict[str, list[SuiteTest]] = {}
    if not findings:  # file checks need sound references
        findings += check_files(recipe, root, lambda p, kind: check_rows(p, shown(p), kind), suites)
    problems = [f if isinstance(f, Problem) else parsed.problem(*f) for f in findings]
    if problems:
        raise InvalidInput(problems)
    return LoadedRecipe(path.resolve(), expand(recipe), suites)  # a sweep's variants become models here
