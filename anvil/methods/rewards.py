"""What a reinforcement round (`method = "grpo"`) takes in the recipe, its `grpo` table, and how its rewards
score an answer. Pure: the training child calls `score` on every sampled answer; validate reads the settings.

A reward is a weighted sum of terms, each 0..1 per answer:

    exact     the answer's first line equals the row's `field` (case, spaces and a final period aside)
    contains  the row's `field` appears in the answer
    number    the last number in the answer equals the number in the row's `field` (GSM8K-style extraction)
    regex     the answer matches `pattern` (a format check: searched, or in full with `full = true`)
    json      the answer is a JSON value that a JSON Schema (`schema`, a table in the recipe) accepts
    judge     the recipe's judge (`[eval] judge`: rules, command, openai or a panel) scores the answer to a
              suite's test (`test = "SUITE/TEST"`: its rubric, its checks) 0-5, read as 0..1; only a judge
              checked against a person on that suite (its calibration set and thresholds), through the
              evaluation's cached, concurrent judge calls

The reward is part of the round's identity: its terms (a judge term's judge, rubric and checks included)
are in the round's fingerprint."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from anvil.recipe.base import NAME_PATTERN, Strict

NUMBER = re.compile(r"-?[0-9][0-9,]*\.?[0-9]*")


class Term(Strict):
    """One term of a reward."""

    model_config = Strict.model_config | ConfigDict(populate_by_name=True)  # `schema`, or json_schema read back

    kind: Literal["exact", "contains", "number", "regex", "json", "judge"] = Field(
        description="How an answer is scored: `exact`, `contains` or `number` against a row's field, `regex` or "
        "`json` as a format check, `judge` by the recipe's calibrated judge against a suite's test."
    )
    field: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="The row field an `exact`, `contains` or `number` term compares with (every row must have it).",
    )
    pattern: str | None = Field(default=None, min_length=1, description="A `regex` term's regular expression.")
    full: bool = Field(default=False, description="A `regex` term matches the whole answer, not a part of it.")
    json_schema: dict[str, Any] | None = Field(
        default=None, alias="schema", description="A `json` term's JSON Schema, as a table."
    )
    test: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
        description="A `judge` term's `SUITE/TEST`: the suite test whose rubric (and checks) the judge scores the "
        "answer against; the suite's calibration set vouches for the judge.",
    )
    weight: float = Field(default=1.0, gt=0, le=100, description="Its weight in the sum.")

    @property
    def suite(self) -> str:
        """A judge term's suite name (`tiny` of `tiny/edge_json`)."""
        return (self.test or "").partition("/")[0]

    @property
    def test_id(self) -> str:
        """A judge term's test id in its suite (`edge_json` of `tiny/edge_json`)."""
        return (self.test or "").partition("/")[2]

    @model_validator(mode="after")
    def _complete(self) -> Term:
        needs = {
            "exact": "field",
            "contains": "field",
            "number": "field",
            "regex": "pattern",
            "json": "json_schema",
            "judge": "test",
        }
        if (key := needs.get(self.kind)) is not None and getattr(self, key) is None:
            raise ValueError(f"a {self.kind} term needs `{key.removeprefix('json_')}`")
        given = {k for k in ("field", "pattern", "json_schema", "test") if getattr(self, k) is not None}
        if extra := given - {needs.get(self.kind)}:
            names = ", ".join(sorted(k.removeprefix("json_") for k in extra))
            raise ValueError(f"a {self.kind} term takes no {names}")
        if self.json_schema is not None:
            from jsonschema import Draft202012Validator, SchemaError

            try:
                Draft202012Validator.check_schema(self.json_schema)
            except SchemaError as e:
                raise ValueError(f"schema is not a JSON Schema ({e.message})") from None
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as e:
                raise ValueError(f"pattern {self.pattern!r} does not compile ({e})") from None
        return self


class Grpo(Strict):
    """How a GRPO round samples, is rewarded and is held near its parent."""

    reward: list[Term] = Field(min_length=1, description="The reward: a weighted sum of these terms.")
    group_size: int = Field(
        default=4, ge=2, le=64, description="Answers sampled per prompt; advantages are relative within a group."
    )
    beta: float = Field(default=0.05, ge=0, le=10, description="Weight of the KL penalty to the parent.")
    max_completion_length: int = Field(default=64, ge=1, le=32_768, description="Tokens per sampled answer.")
    temperature: float = Field(default=1.0, gt=0, le=2, description="Sampling temperature of the answers.")
    loss_type: Literal["grpo", "bnpo", "dr_grpo"] = Field(
        default="grpo", description="mlx-lm-lora's GRPO loss: `grpo`, `bnpo` or `dr_grpo` (Dr. GRPO)."
    )
    guard: Literal["warn", "gate"] = Field(
        default="warn",
        exclude=True,  # what the gate does with the figures, not what the round is
        description="When the held-out reward rose significantly and no gated evaluation of the round did "
        "(suite composites, knowledge benchmarks vs the parent): `warn` (the round's gate says so) or `gate` "
        "(it fails, and the round is not promoted).",
    )

    def fields(self) -> list[tuple[int, str]]:
        """(term index, row field) of every term that reads a field."""
        return [(i, t.field) for i, t in enumerate(self.reward) if t.field is not None]

    def judged(self) -> list[Term]:
        """Its `judge` terms."""
        return [t for t in self.reward if t.kind == "judge"]


def problem(settings: Grpo) -> str | None:
    return None  # a judge term is checked against the recipe's judge and suites (recipe/checks.py)


def first_line(answer: str) -> str:
    return answer.strip().split("\n", 1)[0].strip()


def _normal(text: str) -> str:
    return " ".join(text.split()).rstrip(".").casefold()


def _number(text: str) -> float | None:
    found = [m.replace(",", "").rstrip(".") for m in NUMBER.findall(text)]
    found = [m for m in found if m not in ("", "-")]
    try:
        return float(found[-1]) if found else None
    except ValueError:
        return None


def score(term: Term, answer: str, row: dict[str, Any], judged: float | None = None) -> float:
    """One term's score of an answer to a row, 0..1 (a judge term's: `judged`, the judge's 0-5 score)."""
    if term.kind == "judge":
        if judged is None:
            raise ValueError(f"a judge term ({term.test}) scores only with the judge's verdict")
        return judged / 5
    if term.kind == "exact":
        return float(_normal(first_line(answer)) == _normal(str(row[term.field or ""])))
    if term.kind == "contains":
        return float(_normal(str(row[term.field or ""])) in _normal(answer))
    if term.kind == "number":
        mine, theirs = _number(answer), _number(str(row[term.field or ""]))
        return float(mine is not None and theirs is not None and mine == theirs)
    if term.kind == "regex":
        pattern = re.compile(term.pattern or "")
        return float((pattern.fullmatch(answer.strip()) if term.full else pattern.search(answer)) is not None)
    if term.kind == "json":
        import jsonschema

        try:
            jsonschema.validate(json.loads(answer.strip()), term.json_schema or {})
        except (ValueError, jsonschema.ValidationError):
            return 0.0
        return 1.0
    raise ValueError(f"no scorer for a {term.kind} term")


def total(settings: Grpo, answer: str, row: dict[str, Any], judged: Mapping[str, float] | None = None) -> float:
    """The reward of an answer: the terms' weighted mean, 0..1; `judged`: the judge's score (0-5) of the
    answer against each judge term's test."""
    weights = sum(t.weight for t in settings.reward)
    found = judged or {}
    return sum(t.weight * score(t, answer, row, found.get(t.test or "")) for t in settings.reward) / weights
