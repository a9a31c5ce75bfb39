"""The tools a suite test may offer the model, all offline: a calculator that evaluates arithmetic
safely (an AST walk, never `eval`), a search over the test's documents, and a search over memories the
test preloads."""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from anvil.recipe.suite import Prompt

SPECS = {
    "calculator": {
        "description": "Evaluate an arithmetic expression.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
    },
    "search": {
        "description": "Search the documents for a query.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
    "memory_search": {
        "description": "Search the user's saved memories.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}

_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def calculate(expression: str) -> str:
    """Numbers, + - * / // % ** and parentheses; anything else is refused."""

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e15):
                raise ValueError("power too large")
            return _OPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.operand))
        raise ValueError(f"unsupported expression element {type(node).__name__}")

    try:
        result = value(ast.parse(expression.replace("^", "**").replace("×", "*"), mode="eval").body)
        if not isinstance(result, int | float) or not math.isfinite(result):
            return f"error: {expression!r} has no finite real value"
        return str(int(result)) if float(result).is_integer() else f"{result:.10g}"
    except RecursionError:
        return "error: expression nested too deeply"
    except (SyntaxError, ValueError, TypeError, ArithmeticError, MemoryError) as e:
        return f"error: {e}"


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _search(query: str, items: list[tuple[str, str]], limit: int = 3) -> str:
    wanted = _words(query)
    scored = sorted(((len(wanted & _words(title + " " + text)), title, text) for title, text in items), reverse=True)
    hits = [{"title": title, "text": text} for score, title, text in scored[:limit] if score > 0]
    return json.dumps(hits) if hits else "no results"


def run_tool(test: Prompt, name: str, arguments: Any) -> str:
    """The tool's answer, as text for the tool message; bad calls get an error text, never an exception."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except (json.JSONDecodeError, RecursionError):
            return f"error: arguments are not JSON: {arguments[:100]}"
    if not isinstance(arguments, dict):
        return "error: arguments must be an object"
    if name not in test.tools:
        return f"error: no tool named {name!r} (available: {', '.join(test.tools) or 'none'})"
    if name == "calculator":
        return calculate(str(arguments.get("expression", "")))
    query = str(arguments.get("query", ""))
    if name == "search":
        return _search(query, [(d.title, d.text) for d in test.documents])
    return _search(query, [(m, m) for m in test.memory])


def openai_tools(test: Prompt) -> list[dict] | None:
    return [{"type": "function", "function": {"name": n, **SPECS[n]}} for n in test.tools] or None
