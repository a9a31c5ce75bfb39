"""A quantized checkpoint made with mlx-vlm's own converter (`mlx_vlm.convert`: the quantization its
server loads), and what it costs and buys against its parent: logits on the same token ids, generation
speed and peak memory on the same prompts. One model in memory at a time."""

from __future__ import annotations

import contextlib
import gc
import statistics
import warnings
from pathlib import Path
from typing import Any

from anvil.backends.fuse import load_vlm, load_vlm_with_processor
from anvil.backends.parity import differences, run_forward
from anvil.recipe.quantization import Quantize


def quantize(parent: Path, out: Path, spec: Quantize, log: Path) -> None:
    """Write `parent` quantized by `spec` into `out` (vision and audio towers kept as they are: mlx-vlm
    skips multimodal modules), the converter's own output going to `log`."""
    from mlx_vlm.convert import convert

    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as sink, contextlib.redirect_stdout(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert(
            str(parent),
            str(out),
            quantize=True,
            q_group_size=spec.group_size,
            q_bits=spec.bits,
            q_mode=spec.mode,
            quant_predicate=spec.mixed,
        )


def logits_against(reference: Path, other: Path, probes: list[list[int]], new_tokens: int) -> dict[str, Any]:
    """The parity figures of two checkpoints served by mlx-vlm on the same token ids (backends/parity.py's
    measures: |logit| difference, top-1 agreement per position, greedy agreement per probe)."""
    import mlx.core as mx

    runs = []
    for folder in (reference, other):
        model = load_vlm(folder)

        def language(x, model=model):
            out = model.language_model(x)
            return out.logits if hasattr(out, "logits") else out

        runs.append(run_forward(language, probes, new_tokens))
        del model
        gc.collect()
        mx.clear_cache()
    return differences(runs[0], runs[1])


def decode_traces(folder: Path, prompts: list[str], max_tokens: int) -> tuple[list[list[float]], float]:
    """Greedy generation of each prompt by `folder` as mlx-vlm serves it, after one warm-up pass: per prompt,
    the decode rate mlx-vlm reports after each generated token (prefill excluded), and the peak memory."""
    import mlx.core as mx
    from mlx_vlm import stream_generate
    from mlx_vlm.prompt_utils import apply_chat_template

    gc.collect()
    mx.clear_cache()
    mx.reset_peak_memory()
    model, processor = load_vlm_with_processor(folder)
    chats = [apply_chat_template(processor, model.config, [{"role": "user", "content": p}]) for p in prompts]
    traces = []
    for warm_up in (True, False):
        traces = [
            [r.generation_tps for r in stream_generate(model, processor, c, max_tokens=max_tokens, temperature=0.0)]
            for c in chats
        ]
        if not warm_up:
            break
    peak = mx.get_peak_memory()
    del model, processor
    gc.collect()
    mx.clear_cache()
    return traces, peak / 1e9


def speeds(folders: dict[str, Path], prompts: list[str], max_tokens: int, repeats: int = 2) -> dict[str, Any]:
    """Decode tokens/s of each checkpoint on the same prompts, compared on the same number of tokens (per
    prompt, as many as every checkpoint generated before its end-of-turn) and measured in interleaved
    repeats (A B A B: one model in memory at a time, drift in the machine's speed shared), as the median
    with its spread; with each one's peak memory."""
    rates: dict[str, list[float]] = {role: [] for role in folders}
    peaks: dict[str, float] = dict.fromkeys(folders, 0.0)
    runs = []
    for _ in range(repeats):
        for role, folder in folders.items():
            traces, peak = decode_traces(folder, prompts, max_tokens)
            runs.append((role, traces))
            peaks[role] = max(peaks[role], peak)
    common = [min(len(traces[i]) for _, traces in runs) for i in range(len(prompts))]
    for role, traces in runs:
        compared = [trace[n - 1] for trace, n in zip(traces, common, strict=True) if n > 0]
        rates[role].append(statistics.fmean(compared) if compared else 0.0)
    return {
        role: {
            "tokens_per_second": statistics.median(found),
            "tokens_per_second_range": [min(found), max(found)],
            "repeats": len(found),
            "tokens": sum(common),
            "peak_memory_gb": peaks[role],
        }
        for role, found in rates.items()
    }
