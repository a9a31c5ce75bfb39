"""qa: questions with one exact answer each, Anvil's own protocol for what a round was taught (the default
recipe asks its forging facts). A row is `{"question", "answer"}`, with an optional `system` turn (the
domain's system prompt, as training saw it) and an optional `pattern`, a regular expression the answer's
first line must match in full. The question goes as one user turn, greedy, until the end of the line.

    exact    the answer's first line equals `answer` (case, spaces and a final period aside)
    pattern  its first line matches `pattern` in full (without one: as `exact`)"""

from __future__ import annotations

import re

from anvil.knowledge.protocol import Benchmark, Graded, Item

MAX_TOKENS = 32


def normal(text: str) -> str:
    return " ".join(text.split()).rstrip(".").casefold()


def first_line(response: str) -> str:
    return response.strip().split("\n", 1)[0].strip()


def exact(response: str, item: Item) -> Graded:
    line = first_line(response)
    return Graded(line, bool(line) and normal(line) == normal(item["answer"]))


def pattern(response: str, item: Item) -> Graded:
    if "pattern" not in item:
        return exact(response, item)
    line = first_line(response)
    return Graded(line, re.fullmatch(item["pattern"], line) is not None)


def check(item: Item) -> str | None:
    for field in ("question", "answer"):
        if not isinstance(item.get(field), str) or not item[field].strip():
            return f"needs a non-empty string `{field}`"
    if "system" in item and not isinstance(item["system"], str):
        return "has a `system` that is not a string (expected the system prompt's text)"
    if "pattern" in item:
        if not isinstance(item["pattern"], str):
            return "has a `pattern` that is not a string (expected a regular expression)"
        try:
            re.compile(item["pattern"])
        except re.error as e:
            return f"has a `pattern` that does not compile ({e})"
    return None


def messages(item: Item, shots: list[Item], form: str) -> list[dict[str, str]]:
    system = [{"role": "system", "content": item["system"]}] if item.get("system") else []
    return [*system, {"role": "user", "content": item["question"]}]


BENCHMARK = Benchmark(
    name="qa",
    title="QA",
    key=lambda item: item["question"],
    check=check,
    shot_check=lambda item: "qa asks without exemplars",
    prompt=lambda item, shots: item["question"],
    stop=("\n",),
    filters={"exact": exact, "pattern": pattern},
    default_shots=[],
    shots_needed=0,
    max_tokens=MAX_TOKENS,
    hub_data="",
    chat_turns=messages,
)
