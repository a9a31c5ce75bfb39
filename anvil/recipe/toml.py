"""A TOML file read into a pydantic model, every problem located: `FILE:LINE:COL: key.path: what is
wrong (what is expected)`. Used for recipes and suite test files alike."""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import tomli
from pydantic import BaseModel, ValidationError

from anvil.errors import AnvilError, InvalidInput, Problem
from anvil.recipe.base import PATTERNS
from anvil.recipe.files import MAX_TOML_BYTES, not_a_file
from anvil.recipe.locate import key_positions, locate

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Parsed(Generic[M]):
    """A TOML file validated into a model, with what is needed to locate later findings in it."""

    name: str  # the path as the user gave it
    value: M
    positions: dict

    def problem(self, loc: tuple, message: str) -> Problem:
        return _located(self.name, self.positions, loc, message)


def _located(name: str, positions: dict, loc: tuple, message: str) -> Problem:
    line, col = locate(positions, loc)
    return Problem(name, line, col, _dotted(loc), message)


def toml_file(path: Path, what: str) -> None:
    """Refuse, before anything reads or resolves it, a path that is no TOML file to read: missing, a
    folder, a device, a symlink loop, or too large."""
    name = str(path)
    if (wrong := not_a_file(path)) == "does not exist":
        raise AnvilError(f"{name}: no such {what} (expected a TOML file)")
    if wrong:
        raise AnvilError(f"{name}: cannot read the {what}: it {wrong} (expected a TOML file)")
    if (size := path.stat().st_size) > MAX_TOML_BYTES:
        raise AnvilError(
            f"{name}: cannot read the {what}: {size:,} bytes (expected a TOML file under {MAX_TOML_BYTES >> 20} MB)"
        )


def parse_toml(path: Path, model: type[M], what: str) -> Parsed[M]:
    """Read a TOML file into `model`, or raise InvalidInput with every located problem."""
    name = str(path)
    toml_file(path, what)
    try:
        text = path.read_text(encoding="utf-8").removeprefix("\ufeff")  # a BOM, as editors on Windows write
    except (OSError, UnicodeDecodeError) as e:
        raise AnvilError(f"{name}: cannot read the {what}: {e}") from None
    try:
        data = tomli.loads(text)
    except tomli.TOMLDecodeError as e:
        raise InvalidInput([Problem(name, e.lineno, e.colno, "", f"invalid TOML: {_toml_error(e, text)}")]) from None
    except RecursionError:
        raise InvalidInput([Problem(name, 0, 0, "", "invalid TOML: values nested too deeply")]) from None
    positions = key_positions(text)
    try:
        value = model.model_validate(data, context={"root": path.resolve().parent})  # for files a field names
    except ValidationError as e:
        errors = _one_per_union(e.errors())
        problems = [_located(name, positions, err["loc"], _explain(dict(err), model)) for err in errors]
        raise InvalidInput(sorted(problems, key=lambda p: (p.line, p.col))) from None
    return Parsed(name, value, positions)


def _toml_error(e: tomli.TOMLDecodeError, text: str) -> str:
    """tomli's message, with the line when it is about a key given twice (it does not name the key)."""
    if "overwrite" not in e.msg and "twice" not in e.msg:
        return e.msg
    line = text.splitlines()[e.lineno - 1].strip() if 0 < e.lineno <= len(text.splitlines()) else ""
    return f"{e.msg}: a key or table defined twice (`{line[:80]}`; expected each once)"


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _one_per_union(errors: list[Any]) -> list[Any]:
    """pydantic reports a value that fits no member of a union once per member (`matrix.x[0].float`,
    `[0].int`, ...): one error for the value instead, naming every type it could have been."""
    siblings: dict[tuple, list[Any]] = {}
    for err in errors:
        siblings.setdefault(tuple(err["loc"][:-1]), []).append(err)
    out = []
    for err in errors:
        group = siblings[tuple(err["loc"][:-1])]
        union = len(group) > 1 and all(_type_error(g["type"]) and g.get("input") is err.get("input") for g in group)
        if not union:
            out.append(err)
        elif err is group[0]:
            expected = " or ".join(dict.fromkeys(_expected(g) for g in group))
            out.append({**err, "loc": err["loc"][:-1], "msg": f"Input should be {expected}"})
    return out


def _type_error(kind: str) -> bool:
    return kind.endswith(("_type", "_parsing")) or kind.startswith(("int_", "float_", "bool_"))


def _expected(err: Any) -> str:
    return str(err["msg"]).removeprefix("Input should be ").removeprefix("a valid ")


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
        return f"{given!r} has the wrong form (expected {PATTERNS.get(ctx['pattern'], 'to match ' + ctx['pattern'])})"
    if kind == "too_short":
        return f"has {ctx.get('actual_length')} items (expected at least {ctx.get('min_length')})"
    if kind == "too_long":
        return f"has {ctx.get('actual_length')} items (expected at most {ctx.get('max_length')})"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{given!r} has the wrong type (expected a table)"
    if _type_error(kind):
        return f"{given!r} has the wrong type (expected {_expected(err)})"
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
