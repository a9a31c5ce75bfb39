"""Reading training JSONL: every row parsed and checked against its record, a chat record or (for DPO and
ORPO datasets) a preference pair.

Rows are checked first by pydantic-core against the record's typed dict in strict mode (faster than parsing
the line with `json`), and only a row it rejects goes through `jsonschema` and the published JSON Schema, for
the located message; the two say the same, so the fast path changes speed, never the verdict."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from anvil.errors import InvalidInput, Problem
from anvil.knowledge import data
from anvil.recipe import chat, preference, prompts

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

    from anvil.state.hashing import StatCache

MAX_PROBLEMS_PER_FILE = 20


@dataclass(frozen=True)
class RowFormat:
    record: Any  # the typed dict a row must be
    holds: Callable[[Any], bool]  # the rules its types cannot say, on a row they accept
    schema: Callable[[], dict]  # its published JSON Schema, which explains a rejected row
    file: str  # the schema's file in schema/
    # where and why a row its types accept breaks a rule its schema cannot say either (None: the schema says)
    broken: Callable[[dict], tuple[str, str] | None] = lambda row: None


FORMATS = {
    "chat": RowFormat(chat.ChatRecord, chat.holds, chat.chat_record_schema, "chat-record"),
    "preference": RowFormat(
        preference.PreferenceRecord,
        preference.holds,
        preference.preference_record_schema,
        "preference-record",
        preference.broken,
    ),
    "prompt": RowFormat(prompts.PromptRecord, prompts.holds, prompts.prompt_record_schema, "prompt-record"),
}


@cache
def _parse(kind: str) -> Callable[..., Any]:
    """The row format's pydantic-core validator, made on first use: JSON bytes in, the checked row out."""
    return TypeAdapter(FORMATS[kind].record).validator.validate_json


@cache
def _validator(kind: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # only for rows that fail: most commands never import it

    return Draft202012Validator(FORMATS[kind].schema())


def _valid(raw: bytes | str, kind: str = "chat") -> dict[str, Any] | None:
    """The row if it is a valid one, else None (then `_row_problems` says why)."""
    try:
        record = _parse(kind)(raw, strict=True)
    except (ValidationError, RecursionError):
        return None
    return record if FORMATS[kind].holds(record) else None


def _where(error) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(error.absolute_path))


def _explain(error, kind: str) -> str:
    if error.validator == "contains":
        return "has no assistant message (expected at least one assistant turn to train on)"
    if error.validator == "anyOf" and error.absolute_path and error.absolute_path[-1] != "content":
        return "assistant turn has neither content nor tool_calls (expected text, tool calls or both)"
    return f"{error.message} (expected a {kind} record: see schema/{FORMATS[kind].file}.schema.json)"


def read_rows(path: Path, shown_as: str, kind: str = "chat") -> tuple[list[str], list[Problem]]:
    """The file's non-blank rows (`kind` records) as compact JSON lines, and a problem per invalid row (capped)."""
    rows: list[str] = []
    _, problems = _scan(path, shown_as, rows, kind)
    return rows, problems


def _scan(path: Path, shown_as: str, rows: list[str] | None, kind: str = "chat") -> tuple[int, list[Problem]]:
    """How many valid rows the file holds (appended to `rows` as compact JSON unless it is None: counting
    parses nothing twice) and a problem per invalid row, capped."""
    count, invalid = 0, 0
    problems: list[Problem] = []
    validate, holds = _parse(kind), FORMATS[kind].holds
    with open(path, "rb") as lines:
        for lineno, raw in enumerate(lines, start=1):
            # `_valid`, inlined: this loop is most of a cold `validate` (about 1 us a row saved)
            try:
                record = validate(raw, strict=True)
            except (ValidationError, RecursionError):
                record = None
            if record is not None and holds(record):
                count += 1
                if rows is not None:
                    rows.append(json.dumps(json.loads(raw), ensure_ascii=False, separators=(",", ":")))
                continue
            if not raw.strip():
                continue
            invalid += 1
            if len(problems) < MAX_PROBLEMS_PER_FILE:
                problems.extend(_row_problems(raw, lineno, shown_as, kind)[:3])
    if invalid > MAX_PROBLEMS_PER_FILE:
        problems.append(Problem(shown_as, 0, 0, "", f"{invalid} invalid rows in all; the first are shown"))
    return count, problems


def _row_problems(raw: bytes, lineno: int, shown_as: str, kind: str = "chat") -> list[Problem]:
    """What is wrong with a line the model rejected, located, in the JSON Schema's words."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return [Problem(shown_as, lineno, e.start + 1, "", "not UTF-8 text (expected a UTF-8 JSON object per line)")]
    try:
        row = json.loads(line)
        errors = sorted(_validator(kind).iter_errors(row), key=lambda e: list(map(str, e.absolute_path)))
    except json.JSONDecodeError as e:
        return [Problem(shown_as, lineno, e.colno, "", f"not valid JSON: {e.msg} (expected one JSON object per line)")]
    except RecursionError:
        return [Problem(shown_as, lineno, 1, "", f"nested too deeply (expected a {kind} record)")]
    if errors:
        return [Problem(shown_as, lineno, 1, _where(error) or "row", _explain(error, kind)) for error in errors]
    if isinstance(row, dict) and (found := FORMATS[kind].broken(row)):
        return [Problem(shown_as, lineno, 1, *found)]
    # The schema accepts what the model did not (a number where JSON allows NaN, say): the model's word holds.
    return [
        Problem(
            shown_as,
            lineno,
            1,
            "row",
            f"not a {kind} record (expected one: see schema/{FORMATS[kind].file}.schema.json)",
        )
    ]


def count_rows(path: Path, shown_as: str, kind: str) -> tuple[int, list[Problem]]:
    """How many valid rows a file holds and what is wrong with the others: chat records (`kind` "chat"),
    preference pairs ("preference") or a knowledge benchmark's rows (`kind` its name)."""
    if kind in FORMATS:
        return _scan(path, shown_as, None, kind)
    try:
        benchmark, shots, _ = kind.partition(":fewshot")
        return len(data.read(path, benchmark, shown_as, shots=bool(shots))), []
    except InvalidInput as e:
        return 0, e.problems


def load_rows(path: Path, shown_as: str, kind: str = "chat") -> list[str]:
    rows, problems = read_rows(path, shown_as, kind)
    if problems:
        raise InvalidInput(problems)
    return rows


def cached(hashes: StatCache) -> Callable[[Path, str, str], tuple[int, list[Problem]]]:
    """`count_rows` remembered in the project's stat cache by content: an unchanged file is not parsed again."""

    def check_rows(path: Path, shown_as: str, kind: str) -> tuple[int, list[Problem]]:
        key = f"rows:{kind}:{hashes.file(path)}"
        known = hashes.facts.get(key)
        if isinstance(known, int) and not isinstance(known, bool) and known >= 0:  # else: edited, count again
            return known, []
        valid, problems = count_rows(path, shown_as, kind)
        if not problems:
            hashes.facts[key] = valid
            hashes.dirty = True
        return valid, problems

    return check_rows
