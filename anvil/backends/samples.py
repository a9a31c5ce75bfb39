"""Greedy generations on held-out prompts, with the adapter off (the parent) and on: the visible
evidence, recorded with each train stage, that the round learnt its dataset's patterns."""

from __future__ import annotations

import difflib
import json


def held_out(validation: list[tuple[dict, str]], per_category: int = 2) -> list[dict]:
    """Up to `per_category` validation conversations (row, category) per category, cut before their first
    assistant turn."""
    picked: dict[str, int] = {}
    out = []
    for row, category in validation:
        if picked.get(category, 0) >= per_category:
            continue
        first = next(i for i, m in enumerate(row["messages"]) if m["role"] == "assistant")
        answer = row["messages"][first]
        expected = answer.get("content") or "".join(_shown_call(call) for call in answer["tool_calls"])
        out.append(
            {"category": category, "messages": row["messages"][:first], "tools": row.get("tools"), "expected": expected}
        )
        picked[category] = picked.get(category, 0) + 1
    return out


def _shown_call(call: dict) -> str:
    """A tool call as the synthetic chat template renders it, so outputs compare like for like."""
    function = call.get("function", call)
    arguments = function["arguments"]
    arguments = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return f'<tool_call>{{"name": "{function["name"]}", "arguments": {arguments}}}</tool_call>'


def _lora_scale(model, factor: float) -> None:
    from mlx_lm.tuner.lora import LoRALinear

    for _, module in model.named_modules():
        if isinstance(module, LoRALinear):
            if not hasattr(module, "_anvil_scale"):
                module._anvil_scale = module.scale
            module.scale = module._anvil_scale * factor


def similarity(output: str, expected: str) -> float:
    """How close an output is to the trained answer, 0..1 (difflib's ratio over characters)."""
    return difflib.SequenceMatcher(None, output.strip(), expected.strip()).ratio()


def before_and_after(model, tokenizer, prompts: list[dict], max_tokens: int = 48) -> tuple[list[dict], dict]:
    from mlx_lm import generate

    results = []
    for item in prompts:
        prompt = tokenizer.apply_chat_template(
            item["messages"], tools=item["tools"], tokenize=False, add_generation_prompt=True
        )
        texts = {}
        for label, factor in (("before", 0.0), ("after", 1.0)):
            _lora_scale(model, factor)
            texts[label] = generate(model, tokenizer, prompt, max_tokens=max_tokens).strip()
        results.append(
            {
                "category": item["category"],
                "prompt": item["messages"][-1]["content"],
                "expected": item["expected"],
                **texts,
                "messages": item["messages"],
                "tools": item["tools"],
            }
        )
    _lora_scale(model, 1.0)
    for r in results:
        r["similarity_before"] = round(similarity(r["before"], r["expected"]), 3)
        r["similarity_after"] = round(similarity(r["after"], r["expected"]), 3)
    metrics = {
        "samples": len(results),
        "sample_similarity_before": round(sum(r["similarity_before"] for r in results) / max(len(results), 1), 3),
        "sample_similarity_after": round(sum(r["similarity_after"] for r in results) / max(len(results), 1), 3),
    }
    return results, metrics
