"""Loading a recipe: TOML syntax, then the pydantic models, then cross-references and files, with
every problem reported at once as `FILE:LINE:COL: key.path: what is wrong (what is expected)`."""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import tomli
from pydantic import BaseModel, ValidationError

from anvil.errors import AnvilError, InvalidInput, Problem
from anvil.recipe.checks import check_files, check_references
from anvil.recipe.locate import key_positions, locate
from anvil.recipe.models import Recipe
from anvil.recipe.rows import read_rows

RowChecker = Callable[[Path, str], tuple[int, list[Problem]]]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class LoadedRecipe:
    path: Path  # absolute path of the recipe file
    recipe: Recipe

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


def check_rows_uncached(path: Path, shown_as: str) -> tuple[int, list[Problem]]:
    rows, problems = read_rows(path, shown_as)
    return len(rows), problems


@dataclass(frozen=True)
class Parsed(Generic[M]):
    """A TOML file validated into a model, with what is needed to locate later findings in it."""

    name: str  # the path as the user gave it
    value: M
    positions: dict

    def problem(self, loc: tuple, message: str) -> Problem:
        line, col = locate(self.positions, loc)
        return Problem(self.name, line, col, _dotted(loc), message)


def parse_toml(path: Path, model: type[M], what: str) -> Parsed[M]:
    """Read a TOML file into `model`, or raise InvalidInput with every located problem."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AnvilError(f"{name}: no such {what} (expected a TOML file)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise AnvilError(f"{name}: cannot read the {what}: {e}") from None
    try:
        data = tomli.loads(text)
    except tomli.TOMLDecodeError as e:
        raise InvalidInput([Problem(name, e.lineno, e.colno, "", f"invalid TOML: {e.msg}")]) from None
    positions = key_positions(text)
    try:
        value = model.model_validate(data)
    except ValidationError as e:
        parsed = Parsed(name, None, positions)
        problems = [parsed.problem(err["loc"], _explain(err, model)) for err in e.errors()]
        raise InvalidInput(sorted(problems, key=lambda p: (p.line, p.col))) from None
    return Parsed(name, value, positions)


def load_recipe(path: str | Path, check_rows: RowChecker = check_rows_uncached) -> LoadedRecipe:
    """Parse and validate a recipe completely, or raise InvalidInput listing every problem."""
    path = Path(path)
    parsed = parse_toml(path, Recipe, "recipe")
    recipe = parsed.value
    root = path.resolve().parent
    findings = list(check_references(recipe))
    if not findings:  # file checks need sound references
        findings += check_files(recipe, root, lambda p: check_rows(p, shown(p)))
    problems = [f if isinstance(f, Problem) else parsed.problem(*f) for f in findings]
    if problems:
        raise InvalidInput(problems)
    return LoadedRecipe(path.resolve(), recipe)


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _explain(err: dict, model: type[BaseModel]) -> str:
    """One pydantic error as `what is wrong (what is expected)`."""
    kind, ctx, given = err["type"], err.get("ctx", {}), err.get("input")
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind == "extra_forbidden":
        allowed = _fields_at(model, err["loc"][:-1])
        close = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
        return f"unknown key ({hint})"
    if kind == "missing":
        return "missing (required)"
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"{given!r} is out of range (expected {bounds[kind]} {limit})"
    if kind == "literal_error":
        return f"{given!r} is not allowed (expected {ctx['expected']})"
    if kind == "string_pattern_mismatch":
        return f"{given!r} has the wrong form (expected to match {ctx['pattern']})"
    if kind == "too_short":
        return f"has {ctx.get('actual_length')} items (expected at least {ctx.get('min_length')})"
    if kind == "too_long":
        return f"has {ctx.get('actual_length')} items (expected at most {ctx.get('max_length')})"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{given!r} has the wrong type (expected a table)"
    if kind.endswith(("_type", "_parsing")) or kind.startswith(("int_", "float_", "bool_")):
        expected = err["msg"].removeprefix("Input should be ").removeprefix("a valid ")
        return f"{given!r} has the wrong type (expected {expected})"
    return err["msg"]


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the model found by following `loc` down from `model` (dict keys, list indexes)."""
    annotation: typing.Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = annotation.model_fields[part].annotation
        else:
            args = typing.get_args(annotation)
            annotation = args[-1] if args else annotation
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sorted(annotation.model_fields)
    return []


def _unwrap(annotation):
    """`Model | None` -> `Model`."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation
