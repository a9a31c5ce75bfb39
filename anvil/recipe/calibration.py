"""Calibration sets: answers a person scored, kept beside a suite in `<suite>/calibration/*.jsonl`, so
that the judge is checked against the person before its scores are trusted (stages/calibration.py). One
JSON object a line:

    {"test": "edge_contradiction", "answer": "That contradicts what you said earlier.", "score": 5}
    {"test": "tool_calculator", "answer": "391", "tools_called": ["calculator"], "score": 4.5, "note": "..."}

`test` names the suite's test whose rubric (and, for the rules judge, checks) the answer is judged by;
`answer` is the assistant's final answer, shown after the test's turns; `score` is the person's, 0-5."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, ValidationError

from anvil.errors import Problem, first_error
from anvil.recipe.base import NAME_PATTERN, Strict
from anvil.recipe.files import not_a_file

FOLDER = "calibration"
MAX_BYTES = 16 << 20


class CalibrationItem(Strict):
    test: str = Field(pattern=NAME_PATTERN, description="The suite test whose rubric and checks judge the answer.")
    answer: str = Field(min_length=1, max_length=100_000, description="The assistant's final answer.")
    score: float = Field(ge=0, le=5, description="The score 0-5 a person gave the answer.")
    tools_called: list[str] = Field(default=[], description="Tools the answer called (tool_called checks).")
    note: str | None = Field(default=None, description="Why the person scored it so (never shown to the judge).")


def load_calibration(suite: Path, shown_as: str, tests: set[str]) -> tuple[list[CalibrationItem], list[Problem]]:
    """Every row of a suite's calibration files, in file and line order, and a problem per bad row."""
    folder = suite / FOLDER
    if not folder.is_dir():
        return [], []
    items: list[CalibrationItem] = []
    problems: list[Problem] = []
    for path in sorted(folder.glob("*.jsonl")):
        where = f"{shown_as}/{FOLDER}/{path.name}"
        if (why := not_a_file(path)) is not None or path.stat().st_size > MAX_BYTES:
            problems.append(Problem(where, 0, 0, "", why or f"is over {MAX_BYTES >> 20} MB (expected a JSONL file)"))
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Problem(where, 0, 0, "", f"cannot be read as UTF-8 text ({e})"))
            continue
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            found = _item(line, tests)
            if isinstance(found, CalibrationItem):
                items.append(found)
            else:
                problems.append(Problem(where, number, 1, found[0], found[1]))
    if not items and not problems:
        problems.append(
            Problem(
                f"{shown_as}/{FOLDER}",
                0,
                0,
                "",
                "has no rows (expected *.jsonl files of scored answers, or no calibration folder)",
            )
        )
    return items, problems


def _item(line: str, tests: set[str]) -> CalibrationItem | tuple[str, str]:
    """A row, or (key, what is wrong)."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as e:
        return "", f"not valid JSON ({e})"
    try:
        item = CalibrationItem.model_validate(data)
    except ValidationError as e:
        key, said = first_error(e)
        return key, f'{said} (expected {{"test": ID, "answer": TEXT, "score": 0-5}})'
    if item.test not in tests:
        return "test", f"no test {item.test!r} in the suite (expected one of: {', '.join(sorted(tests))})"
    return item
