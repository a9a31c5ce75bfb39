"""The agent loop a suite test runs through the server: when the model answers with tool calls, run
them against the test's tools, send the results back, and continue until a final answer or the turn
limit."""

from __future__ import annotations

import json
from typing import Any

from anvil.backends.server import chat
from anvil.evaluation.tools import openai_tools, run_tool
from anvil.recipe.suite import Prompt


def converse(server, test: Prompt, seed: int, temperature: float, max_tokens: int) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": test.system}] if test.system else []
    tools_called: list[str] = []
    turn_limit_hit, generated = False, 0
    extra: dict[str, Any] = {"tools": openai_tools(test)} if test.tools else {}
    for user in test.turns:
        messages.append({"role": "user", "content": user})
        for _ in range(test.max_turns):
            reply = chat(server, messages, max_tokens, seed=seed, temperature=temperature, **extra)
            generated += int((reply.get("usage") or {}).get("completion_tokens") or 0)
            message = reply["choices"][0]["message"]
            calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]
            if not calls:
                messages.append({"role": "assistant", "content": message.get("content") or ""})
                break
            messages.append({"role": "assistant", "content": message.get("content") or None, "tool_calls": calls})
            for i, call in enumerate(calls):
                function = _function(call)
                name = str(function.get("name", ""))
                tools_called.append(name)
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": call.get("id") or f"call_{i}",
                        "name": name,
                        "content": run_tool(test, name, function.get("arguments", {})),
                    }
                )
        else:
            turn_limit_hit = True
    final = next((m["content"] for m in reversed(messages) if m["role"] == "assistant" and m.get("content")), "")
    return {
        "messages": messages,
        "final": final,
        "tools_called": tools_called,
        "turn_limit_hit": turn_limit_hit,
        "completion_tokens": generated,
    }


def _function(call: dict) -> dict:
    """A tool call's function part, whatever shape the model produced."""
    function = call.get("function")
    return function if isinstance(function, dict) else {}


def render(transcript: dict[str, Any]) -> str:
    """A transcript as plain text, for a judge's prompt and for `anvil eval show`."""
    lines = []
    for m in transcript["messages"]:
        if m.get("tool_calls"):
            for call in m["tool_calls"]:
                lines.append(
                    f"[assistant calls {_function(call).get('name')}({json.dumps(_function(call).get('arguments'))})]"
                )
        if m.get("content"):
            label = f"tool {m.get('name')}" if m["role"] == "tool" else m["role"]
            lines.append(f"{label}: {m['content']}")
    if transcript.get("turn_limit_hit"):
        lines.append("[turn limit reached without a final answer]")
    return "\n".join(lines)
