"""The chat record every dataset row must be: OpenAI chat format as mlx-lm's ChatDataset reads it.
The pydantic models produce the JSON Schema; rows are checked against it with `jsonschema`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FunctionCall(_Closed):
    name: str = Field(min_length=1, description="Name of the tool called.")
    arguments: str | dict[str, Any] = Field(description="Arguments, as a JSON string or an object.")


class ToolCall(_Closed):
    id: str | None = Field(default=None, description="Call id that the tool message answers.")
    type: Literal["function"] = Field(default="function", description="Always `function`.")
    function: FunctionCall = Field(description="The call.")


class Message(_Closed):
    role: Literal["system", "user", "assistant", "tool"] = Field(description="Who speaks.")
    content: str | None = Field(default=None, description="Text; may be null on an assistant turn with tool_calls.")
    tool_calls: list[ToolCall] | None = Field(default=None, description="Tools the assistant calls (assistant only).")
    tool_call_id: str | None = Field(default=None, description="Call this tool message answers (tool only).")
    name: str | None = Field(default=None, description="Tool name of a tool message.")


class FunctionSpec(_Closed):
    name: str = Field(min_length=1, description="Tool name.")
    description: str | None = Field(default=None, description="What the tool does.")
    parameters: dict[str, Any] = Field(default={}, description="JSON Schema of the arguments.")


class ToolSpec(_Closed):
    type: Literal["function"] = Field(default="function", description="Always `function`.")
    function: FunctionSpec = Field(description="The tool's definition.")


class ChatRecord(_Closed):
    """One training example: a conversation with at least one assistant turn to learn from."""

    messages: list[Message] = Field(
        min_length=1,
        description="The conversation, in order.",
        json_schema_extra={"contains": {"properties": {"role": {"const": "assistant"}}}},
    )
    tools: list[ToolSpec] | None = Field(default=None, description="Tools available in this conversation.")


def chat_record_schema() -> dict[str, Any]:
    schema = ChatRecord.model_json_schema()
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
