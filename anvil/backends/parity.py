"""The model served is the model trained: a round as training saw it (mlx-lm: the parent with its adapter)
against the round as serving runs it (mlx-vlm: the fused checkpoint), on the same token ids, so that no
tokenizer or template can hide a difference. One runtime is loaded at a time (a 31B model twice over
would not fit), each probe's logits kept as float32 numpy, and greedy continuations compared token by
token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anvil.backends.fuse import load_vlm


def probe_ids(checkpoint: Path, prompts: list[dict], limit: int) -> list[list[int]]:
    """Up to `limit` held-out prompts (samples.held_out's shape) as the token ids of their chat template."""
    from mlx_lm.tokenizer_utils import load as load_tokenizer

    tokenizer = load_tokenizer(checkpoint)
    return [
        list(tokenizer.apply_chat_template(p["messages"], tools=p.get("tools"), add_generation_prompt=True))
        for p in prompts[:limit]
    ]


def run_forward(forward, probes: list[list[int]], new_tokens: int) -> tuple[list[Any], list[list[int]]]:
    """Each probe's logits at every position (float32 numpy) and its greedy continuation of `new_tokens`."""
    import mlx.core as mx
    import numpy as np

    logits, continuations = [], []
    for ids in probes:
        tokens = list(ids)
        out = forward(mx.array([tokens])).astype(mx.float32)
        logits.append(np.array(out[0]))
        for _ in range(new_tokens):  # the whole sequence again each step: no cache to differ between runtimes
            tokens.append(int(np.array(out[0, -1]).argmax()))
            out = forward(mx.array([tokens])).astype(mx.float32)
        continuations.append(tokens[len(ids) :])
    return logits, continuations


def compare(parent: Path, adapter: Path, fused: Path, probes: list[list[int]], new_tokens: int) -> dict[str, Any]:
    """max and mean |logit| difference over every position of every probe, the share of positions whose top-1
    token agrees, the share of probes whose greedy continuation agrees, and the probe that differs most."""
    import gc

    import mlx.core as mx
    from mlx_lm import load

    trained, _ = load(str(parent), adapter_path=str(adapter))
    trained_logits, trained_text = run_forward(trained, probes, new_tokens)
    del trained
    gc.collect()
    mx.clear_cache()
    served = load_vlm(fused)

    def language(x):
        out = served.language_model(x)
        return out.logits if hasattr(out, "logits") else out

    served_logits, served_text = run_forward(language, probes, new_tokens)
    return differences((trained_logits, trained_text), (served_logits, served_text))


def differences(
    reference: tuple[list[Any], list[list[int]]], other: tuple[list[Any], list[list[int]]]
) -> dict[str, Any]:
    """Two runs of `run_forward` compared: max and mean |logit| difference, top-1 agreement by position,
    greedy agreement by probe, and the probe that differs most."""
    import numpy as np

    (a_logits, a_text), (b_logits, b_text) = reference, other
    worst, worst_probe, total, count, agree, positions = 0.0, 0, 0.0, 0, 0, 0
    for i, (a, b) in enumerate(zip(a_logits, b_logits, strict=True)):
        difference = np.abs(a - b)
        if float(difference.max()) > worst:
            worst, worst_probe = float(difference.max()), i
        total, count = total + float(difference.sum()), count + difference.size
        agree += int((a.argmax(-1) == b.argmax(-1)).sum())
        positions += a.shape[0]
    greedy = sum(x == y for x, y in zip(a_text, b_text, strict=True))
    return {
        "probes": len(a_text),
        "max_logit_diff": worst,
        "mean_logit_diff": total / max(count, 1),
        "top1_agreement": agree / max(positions, 1),
        "greedy_agreement": greedy / max(len(a_text), 1),
        "worst_probe": worst_probe,
    }
