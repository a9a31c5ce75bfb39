"""Make tests/fixtures/tiny-gemma4-hf: a tiny Gemma 4 saved by transformers itself (Hugging Face's key
layout, `model.language_model.*`, `model.vision_tower.*`, `model.audio_tower.*`, as `hf:google/gemma-4-*`
checkpoints have it), with Anvil's synthetic tokenizer and the logits transformers computes for a fixed
sequence (`reference_logits.json`), against which mlx-lm and mlx-vlm are checked.

It needs torch and transformers, which the test suite does not: run it in a venv of its own, e.g.
    python3 -m venv /tmp/hf && /tmp/hf/bin/pip install torch==2.13.0 transformers==5.25.0 pydantic tokenizers
    /tmp/hf/bin/python scripts/make_hf_checkpoint.py tests/fixtures/tiny-gemma4-hf
and commit what it writes (about 2 MB)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PROBE = [4, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 5, 4]  # token ids: <start_of_turn>, text, <end_of_turn>


def main(out: Path) -> None:
    import torch
    from transformers import Gemma4Config, Gemma4ForConditionalGeneration

    from anvil.backends.synthetic import build_tokenizer

    out.mkdir(parents=True, exist_ok=True)
    ids = build_tokenizer(1024, out)
    vocab = ids["vocab"]
    text = {
        "vocab_size": vocab,
        "vocab_size_per_layer_input": vocab,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 3,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "hidden_size_per_layer_input": 16,
        "sliding_window": 128,
        "max_position_embeddings": 4096,
        "layer_types": ["sliding_attention", "full_attention", "full_attention"],
        "pad_token_id": ids["<pad>"],
        "bos_token_id": ids["<bos>"],
        "eos_token_id": ids["<end_of_turn>"],
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "position_embedding_size": 1024,
    }
    # mlx-vlm builds the audio tower's input projection for transformers' default subsampling channels only
    audio = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "output_proj_dims": 32}
    config = Gemma4Config(
        text_config=text,
        vision_config=vision,
        audio_config=audio,
        image_token_id=ids["<image>"],
        audio_token_id=ids["<audio>"],
        boi_token_id=ids["<boi>"],
        eoi_token_id=ids["<eoi>"],
    )
    torch.manual_seed(0)
    model = Gemma4ForConditionalGeneration(config).eval()
    model.save_pretrained(out)
    # transformers writes the vocabulary under text_config only; mlx-lm reads it at the top (without it, it
    # builds the 262,144-token embedding of the real model and refuses the checkpoint)
    saved = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**saved, "vocab_size": vocab}, indent=2))
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([PROBE])).logits[0].float()
    reference = {"tokens": PROBE, "logits": [[round(float(x), 6) for x in row] for row in logits]}
    (out / "reference_logits.json").write_text(json.dumps(reference))
    print(f"wrote {out}: {sum(p.numel() for p in model.parameters()):,} parameters")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
