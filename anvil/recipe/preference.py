"""The rows a preference round (DPO, ORPO) trains on; its settings are anvil/methods/preference.py's.

A preference row is what mlx-lm-lora's preference datasets read: a user `prompt`, the `chosen` and the
`rejected` assistant answer, an optional `system` prompt; the trainer renders each answer after the
prompt with the model's chat template. A typed dict, as the chat record is (anvil/recipe/chat.py), gives
the JSON Schema (schema/preference-record.schema.json); rows are checked against it (anvil/recipe/rows.py)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, TypeAdapter
from typing_extensions import NotRequired, TypedDict

from anvil.recipe import prompts


class PreferenceRecord(TypedDict):
    """One preference pair: the same prompt answered twice, the first answer preferred."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    prompt: Annotated[str, Field(min_length=1, description="The user's message.")]
    chosen: Annotated[str, Field(min_length=1, description="The preferred assistant answer.")]
    rejected: Annotated[
        str,
        Field(
            min_length=1,
            description="The dispreferred assistant answer; not the chosen "
            "one (a pair of equal answers teaches nothing, and is refused).",
        ),
    ]
    system: NotRequired[Annotated[str | None, Field(min_length=1, description="System prompt, if the pair has one.")]]


def preference_record_schema() -> dict[str, Any]:
    schema = TypeAdapter(PreferenceRecord).json_schema()
    return {**schema, "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Anvil preference record"}


def holds(record: PreferenceRecord) -> bool:
    """The rule the types cannot say: two different answers."""
    return record["chosen"] != record["rejected"]


def broken(row: dict[str, Any]) -> tuple[str, str] | None:
    """Where and why a pair breaks `holds`, which its JSON Schema cannot say."""
    if row.get("chosen") == row.get("rejected"):
        return "rejected", "is the chosen answer (expected a different answer)"
    return None


def as_chat(row: dict[str, Any]) -> dict[str, Any]:
    """A preference pair as the chat record of its chosen answer (a chat record is returned as it is): what
    held-out samples and contamination read."""
    if "messages" in row:
        return row
    if "chosen" not in row:  # a reinforcement round's prompt row
        return prompts.as_chat(row)
    system = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    return {
        "messages": [
            *system,
            {"role": "user", "content": row["prompt"]},
            {"role": "assistant", "content": row["chosen"]},
        ]
    }
