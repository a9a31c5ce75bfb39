"""Reading chat JSONL: every row parsed and checked against the chat-record JSON Schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator

from anvil.errors import InvalidInput, Problem
from anvil.recipe.chat import chat_record_schema

MAX_PROBLEMS_PER_FILE = 20


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(chat_record_schema())


def _where(error) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(error.absolute_path))


def _explain(error) -> str:
    if error.validator == "contains":
        return "has no assistant message (expected at least one assistant turn to train on)"
    if error.validator == "anyOf" and error.absolute_path and error.absolute_path[-1] != "content":
        return "assistant turn has neither content nor tool_calls (expected text, tool calls or both)"
    return f"{error.message} (expected a chat record: see schema/chat-record.schema.json)"


def read_rows(path: Path, shown_as: str) -> tuple[list[str], list[Problem]]:
    """The file's non-blank rows as compact JSON lines, and a problem per invalid row (capped)."""
    rows: list[str] = []
    problems: list[Problem] = []
    invalid = 0
    with open(path, "rb") as lines:
        for lineno, raw in enumerate(lines, start=1):
            found = _row_problems(raw, lineno, shown_as, rows)
            if found:
                invalid += 1
                if len(problems) < MAX_PROBLEMS_PER_FILE:
                    problems.extend(found[:3])
    if invalid > MAX_PROBLEMS_PER_FILE:
        problems.append(Problem(shown_as, 0, 0, "", f"{invalid} invalid rows in all; the first are shown"))
    return rows, problems


def _row_problems(raw: bytes, lineno: int, shown_as: str, rows: list[str]) -> list[Problem]:
    """What is wrong with one line; a valid row is appended to `rows` instead."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return [Problem(shown_as, lineno, e.start + 1, "", "not UTF-8 text (expected a UTF-8 JSON object per line)")]
    if not line.strip():
        return []
    try:
        row = json.loads(line)
        errors = sorted(_validator().iter_errors(row), key=lambda e: list(map(str, e.absolute_path)))
    except json.JSONDecodeError as e:
        return [Problem(shown_as, lineno, e.colno, "", f"not valid JSON: {e.msg} (expected one JSON object per line)")]
    except RecursionError:
        return [Problem(shown_as, lineno, 1, "", "nested too deeply (expected a chat record)")]
    if errors:
        return [Problem(shown_as, lineno, 1, _where(error) or "row", _explain(error)) for error in errors]
    rows.append(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
    return []


def count_rows(path: Path, shown_as: str, kind: str) -> tuple[int, list[Problem]]:
    """How many valid rows a file holds and what is wrong with the others: chat records (`kind` "chat")
    or a knowledge benchmark's rows (`kind` its name)."""
    if kind == "chat":
        rows, problems = read_rows(path, shown_as)
        return len(rows), problems
    from anvil.evaluation.benchmarks import data

    try:
        return len(data.read(path, kind if kind != "fewshot" else None, shown_as)), []
    except InvalidInput as e:
        return 0, e.problems


def load_rows(path: Path, shown_as: str) -> list[str]:
    rows, problems = read_rows(path, shown_as)
    if problems:
        raise InvalidInput(problems)
    return rows
