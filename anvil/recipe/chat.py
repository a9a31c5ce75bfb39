"""The chat record every dataset row must be: OpenAI chat format as mlx-lm's ChatDataset reads it.

Typed dicts, not models (the OpenAI SDK types its messages the same way): pydantic checks a row against them
without building an object per message, twice as fast as models, and rows are only ever checked, never used
as objects. They produce the published JSON Schema; a row pydantic rejects is explained through it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter
from typing_extensions import NotRequired, TypedDict

CLOSED = ConfigDict(extra="forbid")


class FunctionCall(TypedDict):
    __pydantic_config__ = CLOSED  # type: ignore[misc]
    name: Annotated[str, Field(min_length=1, description="Name of the tool called.")]
    arguments: Annotated[str | dict[str, Any], Field(description="Arguments, as a JSON string or an object.")]


class ToolCall(TypedDict):
    __pydantic_config__ = CLOSED  # type: ignore[misc]
    id: NotRequired[Annotated[str | None, Field(description="Call id that the tool message answers.")]]
    type: NotRequired[Annotated[Literal["function"], Field(description="Always `function`.")]]
    function: Annotated[FunctionCall, Field(description="The call.")]


class Message(TypedDict):
    __pydantic_config__ = CLOSED  # type: ignore[misc]
    role: Annotated[Literal["system", "user", "assistant", "tool"], Field(description="Who speaks.")]
    content: NotRequired[
        Annotated[str | None, Field(description="Text; may be null on an assistant turn with tool_calls.")]
    ]
    tool_calls: NotRequired[
        Annotated[list[ToolCall] | None, Field(description="Tools the assistant calls (assistant only).")]
    ]
    tool_call_id: NotRequired[Annotated[str | None, Field(description="Call this tool message answers (tool only).")]]
    name: NotRequired[Annotated[str | None, Field(description="Tool name of a tool message.")]]


class FunctionSpec(TypedDict):
    __pydantic_config__ = CLOSED  # type: ignore[misc]
    name: Annotated[str, Field(min_length=1, description="Tool name.")]
    description: NotRequired[Annotated[str | None, Field(description="What the tool does.")]]
    parameters: NotRequired[Annotated[dict[str, Any], Field(description="JSON Schema of the arguments.")]]


class ToolSpec(TypedDict):
    __pydantic_config__ = CLOSED  # type: ignore[misc]
    type: NotRequired[Annotated[Literal["function"], Field(description="Always `function`.")]]
    function: Annotated[FunctionSpec, Field(description="The tool's definition.")]


class ChatRecord(TypedDict):
    """One training example: a conversation with at least one assistant turn to learn from."""

    __pydantic_config__ = CLOSED  # type: ignore[misc]
    messages: Annotated[
        list[Message],
        Field(
            min_length=1,
            description="The conversation, in order.",
            json_schema_extra={"contains": {"properties": {"role": {"const": "assistant"}}}},
        ),
    ]
    tools: NotRequired[Annotated[list[ToolSpec] | None, Field(description="Tools available in this conversation.")]]


def chat_record_schema() -> dict[str, Any]:
    schema = TypeAdapter(ChatRecord).json_schema()
    message = schema["$defs"]["Message"]
    # Semantic rules the type system cannot say: an assistant turn has text or calls; a tool turn has text.
    message["allOf"] = [
        {
            "if": {"properties": {"role": {"const": "assistant"}}},
            "then": {
                "anyOf": [
                    {"required": ["content"], "properties": {"content": {"type": "string"}}},
                    {"required": ["tool_calls"], "properties": {"tool_calls": {"type": "array"}}},
                ]
            },
        },
        {
            "if": {"properties": {"role": {"enum": ["system", "user", "tool"]}}},
            "then": {"required": ["content"], "properties": {"content": {"type": "string"}}},
        },
    ]
    return {**schema, "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Anvil chat record"}


def holds(record: ChatRecord) -> bool:
    """The rules `chat_record_schema` adds to the types, on a row the types accept: an assistant turn to learn
    from, text or tool calls on every assistant turn, text on every other. One plain loop: it runs for every
    row `validate` reads."""
    learns = False
    for m in record["messages"]:
        if m["role"] == "assistant":
            learns = True
            if m.get("content") is None and m.get("tool_calls") is None:
                return False
        elif m.get("content") is None:
            return False
    return learns
