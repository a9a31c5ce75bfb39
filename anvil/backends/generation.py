"""In-process greedy generation with mlx-vlm, formatted as its server formats a chat request."""

from __future__ import annotations

import gc
from pathlib import Path


def greedy_texts(folder: Path, prompts: list[str], max_tokens: int) -> list[str]:
    """One user turn per prompt, chat template applied, greedy decoding; the model is freed afterwards."""
    import mlx.core as mx
    from mlx_vlm import generate
    from mlx_vlm.prompt_utils import apply_chat_template

    from anvil.backends.fuse import load_vlm_with_processor

    model, processor = load_vlm_with_processor(folder)
    texts = []
    for prompt in prompts:
        formatted = apply_chat_template(processor, model.config, [{"role": "user", "content": prompt}])
        result = generate(model, processor, formatted, max_tokens=max_tokens, temperature=0.0, verbose=False)
        texts.append(result.text)
    del model, processor
    gc.collect()
    mx.clear_cache()
    return texts
