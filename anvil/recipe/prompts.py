"""The rows a reinforcement round (GRPO) trains on; its settings and rewards are anvil/methods/rewards.py's.

A prompt row is what mlx-lm-lora's GRPO dataset reads: a user `prompt` and an optional `system` prompt; the
policy answers it `group_size` times and the recipe's reward scores each answer. Any other field (an
`answer`, a `number`) is there for a reward to read: the reward names it, and validate checks that every row
has it. The typed dict gives the JSON Schema (schema/prompt-record.schema.json)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, TypeAdapter
from typing_extensions import NotRequired, TypedDict


class PromptRecord(TypedDict):
    """One prompt to answer, with the fields its rewards read."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    prompt: Annotated[str, Field(min_length=1, description="The user's message.")]
    system: NotRequired[Annotated[str | None, Field(min_length=1, description="System prompt, if it has one.")]]


def prompt_record_schema() -> dict[str, Any]:
    schema = TypeAdapter(PromptRecord).json_schema()
    return {**schema, "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Anvil prompt record"}


def holds(record: PromptRecord) -> bool:
    return True


def as_chat(row: dict[str, Any]) -> dict[str, Any]:
    """A prompt row as a chat record (held-out samples read its turns), its `answer` field, if it has one, as
    the expected answer."""
    system = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    answer = {"role": "assistant", "content": str(row.get("answer", ""))}
    return {"messages": [*system, {"role": "user", "content": row["prompt"]}, answer]}
