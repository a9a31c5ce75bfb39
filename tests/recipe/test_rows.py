"""Row checking: the fast path (the pydantic model, strict) and the JSON Schema agree on every row."""

from __future__ import annotations

import copy
import json
import random

from anvil.recipe.rows import _valid, _validator

VALID = [
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
    {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "2+2?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "calc", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "name": "calc", "content": "4"},
            {"role": "assistant", "content": "4"},
        ],
        "tools": [{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}],
    },
]
ODD_VALUES = [None, 0, 1.5, True, "", "x", "assistant", "function", [], {}, [1], {"a": 1}, float("nan")]


def _mutations(rng: random.Random, row, depth=0):
    """A copy of `row` with one value somewhere replaced, removed or added."""
    row = copy.deepcopy(row)
    node, path = row, []
    while isinstance(node, (dict, list)) and node and rng.random() < 0.7:
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        if not isinstance(node[key], (dict, list)):
            break
        node, path = node[key], path + [key]
    change = rng.choice(["replace", "remove", "add"])
    if isinstance(node, dict) and node:
        key = rng.choice(list(node))
        if change == "replace":
            node[key] = rng.choice(ODD_VALUES)
        elif change == "remove":
            del node[key]
        else:
            node[rng.choice(["role", "content", "extra", "tool_calls", "name"])] = rng.choice(ODD_VALUES)
    elif isinstance(node, list) and node:
        index = rng.randrange(len(node))
        if change == "remove":
            del node[index]
        else:
            node[index] = rng.choice(ODD_VALUES)
    return row


def test_the_fast_path_and_the_json_schema_give_the_same_verdict_on_thousands_of_mutated_rows():
    rng = random.Random(0)
    disagreements, verdicts = [], []
    for _ in range(3000):
        row = _mutations(rng, rng.choice(VALID))
        if rng.random() < 0.3:
            row = _mutations(rng, row)
        line = json.dumps(row)
        fast = _valid(line) is not None
        verdicts.append(fast)
        schema = not any(True for _ in _validator("chat").iter_errors(json.loads(line)))
        if fast != schema and not (schema and "NaN" in line):  # JSON has no NaN: the model rejects it, rightly
            disagreements.append((line, fast, schema))
    assert disagreements == []
    assert 300 < sum(verdicts) < 2700, "the mutations should give both verdicts often"
    assert all(_valid(json.dumps(row)) is not None for row in VALID)
