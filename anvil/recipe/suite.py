"""A behavioural suite: a folder of hand-written test files (TOML), validated like recipes.

id = "tool_calculator"            # defaults to the file name
category = "tool_use"
turns = ["What is 17 * 23?"]      # user turns, each answered through a full agent loop
tools = ["calculator"]            # built-in tools the model may call
rubric = "Calls the calculator, then states 391."
gate = 3.0                        # the test fails its gate below this mean score (0-5)
[[checks]]                        # deterministic checks, scored by the `rules` judge
kind = "tool_called"
value = "calculator"
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from anvil.errors import InvalidInput, Problem
from anvil.recipe.base import NAME_PATTERN, Strict
from anvil.recipe.calibration import CalibrationItem, load_calibration
from anvil.recipe.toml import parse_toml

ToolName = Literal["calculator", "search", "memory_search"]


class Check(Strict):
    kind: Literal["contains", "not_contains", "regex", "json_schema", "tool_called", "max_length", "min_length"] = (
        Field(description="What the final answer (or, for tool_called, the transcript) must satisfy.")
    )
    value: str | None = Field(default=None, description="Text (contains, not_contains), pattern (regex) or tool name.")
    schema_: dict[str, Any] | None = Field(
        default=None, alias="schema", description="JSON Schema the answer, parsed as JSON, must match (json_schema)."
    )
    length: int | None = Field(default=None, ge=0, description="Characters (max_length, min_length).")
    ignore_case: bool = Field(default=True, description="Case-insensitive contains / not_contains / regex.")

    @model_validator(mode="after")
    def _needs(self) -> Check:
        needs = {
            "contains": "value",
            "not_contains": "value",
            "regex": "value",
            "tool_called": "value",
            "json_schema": "schema_",
            "max_length": "length",
            "min_length": "length",
        }
        if getattr(self, needs[self.kind]) is None:
            raise ValueError(f"a {self.kind} check needs {needs[self.kind].rstrip('_')}")
        if self.kind == "regex":
            try:
                re.compile(self.value or "")
            except re.error as e:
                raise ValueError(f"invalid regex {self.value!r}: {e}") from None
        return self


class Document(Strict):
    title: str = Field(description="Title the search tool matches and returns.")
    text: str = Field(description="Body the search tool matches and returns.")


class Prompt(Strict):
    """What the model is asked: the part of a test that generating its transcripts depends on."""

    system: str | None = Field(default=None, description="System prompt.")
    turns: list[str] = Field(min_length=1, description="User turns, sent in order.")
    tools: list[ToolName] = Field(default=[], description="Built-in tools offered to the model.")
    documents: list[Document] = Field(default=[], description="What the search tool searches.")
    memory: list[str] = Field(default=[], description="Memories preloaded for memory_search.")
    max_turns: int = Field(default=4, ge=1, le=16, description="Model calls per user turn before giving up.")


class Scoring(Strict):
    """How an answer is judged and counted: the part of a test that scoring its transcripts depends on."""

    id: str = Field(default="", pattern=NAME_PATTERN, description="Test id; defaults to the file name.")
    category: str = Field(pattern=NAME_PATTERN, description="Category it counts towards.")
    rubric: str = Field(min_length=1, description="What a good answer does, for the judge.")
    checks: list[Check] = Field(default=[], description="Deterministic checks (the rules judge's score).")
    weight: float = Field(default=1.0, gt=0, description="Weight in its category and the composite.")
    gate: float | None = Field(default=None, ge=0, le=5, description="Minimum mean score (0-5) to pass.")


class SuiteTest(Prompt, Scoring):
    """One behavioural test, as its file writes it: a prompt and how to score the answers."""

    def prompt(self) -> Prompt:
        return Prompt(**{name: getattr(self, name) for name in Prompt.model_fields})

    def scoring(self) -> Scoring:
        return Scoring(**{name: getattr(self, name) for name in Scoring.model_fields})


class Suite(list[SuiteTest]):
    """A suite's tests, in file order, with the answers a person scored to check its judge against
    (recipe/calibration.py; empty without a calibration folder)."""

    def __init__(self, tests: list[SuiteTest], calibration: list[CalibrationItem] | None = None):
        super().__init__(tests)
        self.calibration = calibration or []


class SuiteFolderError(ValueError):
    """The suite folder itself is wrong (missing, a file, empty): the recipe's `eval.suites` entry is at fault."""


def load_suite(folder: Path, shown_as: str) -> Suite:
    """Every `*.toml` test of a suite folder, validated, and its calibration set; all problems of all files
    reported together."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise SuiteFolderError(f"{shown_as} {what} (expected a folder of test .toml files)")
    tests: list[SuiteTest] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.toml")):
        try:
            parsed = parse_toml(path, SuiteTest, "suite test")
        except InvalidInput as e:
            problems += e.problems
            continue
        test = parsed.value
        if not test.id:
            test = test.model_copy(update={"id": path.stem})
        if test.id in seen:
            problems.append(parsed.problem(("id",), f"duplicate test id {test.id!r} (also in {seen[test.id]})"))
        if "search" in test.tools and not test.documents:
            problems.append(parsed.problem(("tools",), "the search tool needs documents to search"))
        seen[test.id] = path.name
        tests.append(test)
    if not tests and not problems:
        raise SuiteFolderError(f"{shown_as} has no test files (expected *.toml files)")
    calibration, wrong = load_calibration(folder, shown_as, set(seen))
    if problems or wrong:
        raise InvalidInput(problems + wrong)
    return Suite(tests, calibration)
