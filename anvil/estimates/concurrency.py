"""`[eval] concurrency = "auto"`: how many requests an evaluation server takes at once, chosen from memory.

Each request in flight holds a KV cache for its prompt and the longest answer the stage allows, at the KV
bits it is served with; the weights are held once. The choice is the most requests whose caches fit beside
the weights under the share of memory the plan warns above, and at most AUTO_CAP: on a 2-core CPU the served
tiny model's throughput peaked at 8 at once and fell at 16 (benchmarks/eval_throughput.py), and an Apple
Silicon GPU is saturated by a 31B model's batch of 8 long before its memory is. Pure arithmetic."""

from __future__ import annotations

from collections.abc import Callable

from anvil.estimates.arithmetic import GB

AUTO_CAP = 8
SAMPLED = (
    "1 at once: its answers are sampled with a seed each, which mlx-vlm's server reproduces one at a time "
    "only (measured: batched, the default recipe's transcripts came out different)"
)


def chosen(peak: Callable[[int], float | None], limit: float, share: float) -> tuple[int, str] | None:
    """(requests at once, why) for a stage whose peak memory with n requests in flight is `peak(n)`; None when
    its peak is not known (a model whose size is not known yet, a stage that generates through another's
    server)."""
    alone, one = peak(0), peak(1)
    if alone is None or one is None:
        return None
    per_request = one - alone
    room = int((share * limit - alone) // per_request) if per_request > 0 else AUTO_CAP
    count = max(1, min(AUTO_CAP, room))
    each = f"{per_request / GB:.2f} GB" if per_request >= GB / 10 else f"{per_request / 1e6:.1f} MB"
    fits = f"memory for {room:,} beside the weights" if room >= 1 else "no memory beside the weights"
    capped = f", at most {AUTO_CAP}" if room > AUTO_CAP else ""
    return count, f"{count} at once: a KV cache of {each} each, {fits}{capped}"
