"""A quantized checkpoint made with mlx-vlm's own converter (`mlx_vlm.convert`: the quantization its
server loads), and what it costs and buys against its parent: logits on the same token ids, generation
speed and peak memory on the same prompts. One model in memory at a time."""

from __future__ import annotations

import contextlib
import gc
import time
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


def speed(folder: Path, prompts: list[str], max_tokens: int) -> dict[str, float]:
    """Generation tokens/s (decode only, as mlx-vlm reports it) and peak memory of serving `folder` on
    `prompts`, greedy, one at a time."""
    import mlx.core as mx
    from mlx_vlm import stream_generate
    from mlx_vlm.prompt_utils import apply_chat_template

    gc.collect()
    mx.clear_cache()
    mx.reset_peak_memory()
    model, processor = load_vlm_with_processor(folder)
    tokens, seconds = 0, 0.0
    for prompt in prompts:
        formatted = apply_chat_template(processor, model.config, [{"role": "user", "content": prompt}])
        t0 = time.perf_counter()
        responses = list(stream_generate(model, processor, formatted, max_tokens=max_tokens, temperature=0.0))
        seconds += time.perf_counter() - t0
        tokens += responses[-1].generation_tokens if responses else 0
    peak = mx.get_peak_memory()
    del model, processor
    gc.collect()
    mx.clear_cache()
    return {
        "tokens_per_second": tokens / seconds if seconds > 0 else 0.0,
        "peak_memory_gb": peak / 1e9,
        "tokens": tokens,
    }
