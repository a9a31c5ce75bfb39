"""Sweeps: a round that declares a matrix of its settings is expanded into variants, each a full round
with its own stages, named by what it sets (`v2(lr=1e-3,rank=8)`); the round's own name then means the
winner a `select` stage picks (stages/select.py). Expansion is pure and happens once, when the recipe is
read: the graph, the plan, the report and `--target` all see the variants as models."""

from __future__ import annotations

import itertools
import typing
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from anvil.recipe.base import Strict

TABLES = ("train", "lora")  # what a matrix may vary: a round's optimiser and adapter settings
SHORT = {
    "learning_rate": "lr",
    "batch_size": "bs",
    "max_seq_length": "seq",
    "last_layers": "layers",
    "warmup_steps": "warmup",
}
MAX_VARIANTS = 32


class Select(Strict):
    """How a sweep's winner is chosen, once every variant is evaluated."""

    metric: str = Field(description="A gate metric of the variants (e.g. `behavioral.composite`); higher is better.")
    rule: Literal["best", "simplest_within_noise"] = Field(
        default="best",
        description="`best`: the highest value; `simplest_within_noise`: the simplest variant not significantly "
        "worse than the best (paired test over the suite's tests, Holm-adjusted across the variants; suite "
        "metrics only).",
    )
    tie: Literal["simplest", "first"] = Field(
        default="simplest",
        description="Between equal values: the simplest variant (smallest values, by the matrix's key order) or the "
        "first listed.",
    )


def _value(value: Any) -> str:
    """A value as a variant's name shows it: `1e-3`, `0.5`, `16`, `true`; the shorter of plain and
    scientific notation."""
    if not isinstance(value, float):
        return str(value).lower()
    mantissa, exponent = f"{value:e}".split("e")
    scientific = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    plain = f"{value:g}"
    return scientific if "e" in plain or len(scientific) < len(plain) else plain


def variant_name(model: str, settings: dict[str, Any]) -> str:
    """`v2(lr=2e-5,rank=16)`: the round's name and each swept setting, short. Parentheses, not brackets:
    a stage's files and folders are named after it, and libraries glob them (`[...]` is a glob class)."""
    shown = ",".join(
        f"{SHORT.get(key.split('.', 1)[1], key.split('.', 1)[1])}={_value(v)}" for key, v in settings.items()
    )
    return f"{model}({shown})"


def combinations(matrix: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the matrix's values, in its keys' order (the last key varying fastest)."""
    return [dict(zip(matrix, values, strict=True)) for values in itertools.product(*matrix.values())]


def simplicity(settings: dict[str, Any]) -> tuple:
    """The order `tie = "simplest"` prefers: smaller values first, by the matrix's key order."""
    return tuple(settings.values())


def overridden(model, settings: dict[str, Any]):
    """The round with the swept settings set: a variant, a round like any other."""
    update: dict[str, Any] = {"matrix": None, "select": None}
    for table in dict.fromkeys(key.split(".", 1)[0] for key in settings):
        current = getattr(model, table)
        fields = {key.split(".", 1)[1]: v for key, v in settings.items() if key.startswith(f"{table}.")}
        update[table] = _model_of(model, table).model_validate(
            (current.model_dump() if current is not None else {}) | fields
        )
    return model.model_copy(update=update)


def setting_problem(model, key: str, values: list[Any]) -> str | None:
    """What is wrong with one matrix entry of a round, or None."""

    table, dot, field = key.partition(".")
    if not dot or table not in TABLES:
        return f"{key!r} is not a setting a matrix can vary (expected train.FIELD or lora.FIELD)"
    kind = _model_of(model, table)
    if field not in kind.model_fields:
        return f"{key!r}: {table} has no field {field!r} (expected one of: {', '.join(kind.model_fields)})"
    if not values:
        return f"{key!r} lists no values (expected one or more; the matrix as a whole makes two or more variants)"
    for i, a in enumerate(values):
        for b in values[i + 1 :]:
            if a == b and isinstance(a, bool) == isinstance(b, bool):  # 10 and 10.0 too; not 1 and true
                same = "is listed twice" if repr(a) == repr(b) else f"and {b!r} are the same number"
                return f"{key!r}: {a!r} {same} (each value makes a variant of its own)"
    for value in values:
        try:
            overridden(model, {key: value})
        except ValidationError as e:
            return f"{key!r}: {value!r} is not a valid {field} ({e.errors()[0]['msg']})"
    return None


def _model_of(model, table: str) -> type[BaseModel]:
    """The settings model of a round's table (Train, Lora), read off the round's own field: no import of the
    recipe's models here, which import this module."""
    annotation = type(model).model_fields[table].annotation
    return next(a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel))


def variants(name: str, model) -> dict[str, dict[str, Any]]:
    """A swept round's variants: name -> the settings it sets."""
    return {variant_name(name, s): s for s in combinations(model.matrix or {})}


def expand(recipe):
    """The recipe with every swept round's variants added as models (before the round, in matrix order) and
    evaluated wherever the round is compared (they are what its `select` chooses from)."""
    swept = {name: m for name, m in recipe.models.items() if m.matrix}
    if not swept:
        return recipe
    models: dict[str, Any] = {}
    for name, model in recipe.models.items():
        if name in swept:
            models |= {v: overridden(model, s) for v, s in variants(name, model).items()}
        models[name] = model
    update: dict[str, Any] = {"models": models}
    if recipe.eval is not None:
        compare: list[str] = []
        for name in list(recipe.eval.compare) + [n for n in swept if n not in recipe.eval.compare]:
            compare += [*variants(name, swept[name])] if name in swept else []
            compare += [name] if name in recipe.eval.compare else []
        update["eval"] = recipe.eval.model_copy(update={"compare": compare})
    return recipe.model_copy(update=update)
