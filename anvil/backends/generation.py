"""In-process greedy generation with mlx-vlm, formatted as its server formats a chat request."""

from __future__ import annotations

import gc
from pathlib import Path

from anvil.backends.fuse import load_vlm_with_processor


def greedy_texts(folder: Path, prompts: list[str], max_tokens: int) -> list[dict]:
    """One user turn per prompt, chat template applied, greedy decoding; the model is freed afterwards.
    Each answer's `text` (its tokens decoded whole, invalid UTF-8 replaced, as a server streaming them
    writes it) and `logprobs`, the log-probability of each token chosen, as a server reports them."""
    import mlx.core as mx
    from mlx_vlm import stream_generate
    from mlx_vlm.prompt_utils import apply_chat_template

    model, processor = load_vlm_with_processor(folder)
    tokenizer = getattr(processor, "tokenizer", processor)
    stops = set(
        model.config.eos_token_id if isinstance(model.config.eos_token_id, list) else [model.config.eos_token_id]
    )
    answers = []
    for prompt in prompts:
        formatted = apply_chat_template(processor, model.config, [{"role": "user", "content": prompt}])
        responses = list(stream_generate(model, processor, formatted, max_tokens=max_tokens, temperature=0.0))
        # Stopped by max_tokens, the last response flushes the detokenizer and repeats the last token:
        # counted once, as the server counts it.
        count = responses[-1].generation_tokens if responses else 0
        chosen = [r for r in responses[:count] if r.token is not None and r.token not in stops]
        answers.append(
            {
                "text": tokenizer.decode([r.token for r in chosen]),
                "logprobs": [float(r.logprobs[r.token]) for r in chosen],
            }
        )
    del model, processor
    gc.collect()
    mx.clear_cache()
    return answers
