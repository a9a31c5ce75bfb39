"""A tiny Gemma 4 built offline: the real `gemma4` architecture from mlx-vlm with random weights, small
vision and audio towers, a byte-level BPE tokenizer trained on Anvil's own corpus and a chat template for
system / user / assistant / tool turns and tool definitions. Deterministic for a given recipe.

Its config.json holds every field of each tower's config as mlx-vlm resolved it, and Gemma 4's rope as
transformers writes it: a field left out is filled by each runtime's own default, and mlx-lm (training)
and mlx-vlm (serving) do not fill all of them alike (the rope of full-attention layers, for one), so one
checkpoint would be two functions. The language model and the vision tower are drawn as they were before
the audio tower was added, so a recipe's base keeps its weights and the function it was trained as."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from pathlib import Path
from typing import cast

from anvil.recipe.models import Synthetic

STOPS = ("<end_of_turn>", "<eos>")
# Gemma 4's rope as transformers writes it by default: sliding layers rotate all of each head, full-attention
# layers a quarter of it (proportional rope).
ROPE = {
    "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
    "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1000000.0},
}
SPECIAL_TOKENS = [
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<image>",
    "<audio>",
    "<boi>",
    "<eoi>",
    "<boa>",
    "<eoa>",
]


def asset(name: str) -> str:
    return resources.files("anvil.assets").joinpath(name).read_text(encoding="utf-8")


def build_tokenizer(vocab_size: int, out: Path) -> dict[str, int]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(asset("corpus.txt").splitlines(), trainer)
    tokenizer.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<bos>",
        "eos_token": "<end_of_turn>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "model_max_length": 4096,
        "chat_template": asset("chat_template.jinja"),
        # What mlx-vlm's Gemma 4 processor reads to place an image's or a clip's soft tokens.
        "extra_special_tokens": {
            "image_token": "<image>",
            "boi_token": "<boi>",
            "eoi_token": "<eoi>",
            "audio_token": "<audio>",
            "boa_token": "<boa>",
            "eoa_token": "<eoa>",
        },
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
    assert None not in ids.values(), "the trainer adds every special token"
    return cast(dict[str, int], ids) | {"vocab": tokenizer.get_vocab_size()}


def model_config(sizes: Synthetic, ids: dict[str, int]) -> dict:
    vocab = ids["vocab"]
    text = {
        "model_type": "gemma4_text",
        "hidden_size": sizes.hidden_size,
        "num_hidden_layers": sizes.num_layers,
        "intermediate_size": sizes.intermediate_size,
        "num_attention_heads": sizes.num_heads,
        "num_key_value_heads": 1,
        "head_dim": sizes.head_dim,
        "global_head_dim": sizes.head_dim,
        "vocab_size": vocab,
        "vocab_size_per_layer_input": vocab,
        "hidden_size_per_layer_input": 16,
        "num_kv_shared_layers": 0,
        "sliding_window": 128,
        "sliding_window_pattern": 2,
        # Written out, so that mlx-vlm and transformers build the same pattern: every 2nd layer global.
        # The last layer is global too, as transformers insists for Gemma 4.
        "layer_types": [
            "full_attention" if (i + 1) % 2 == 0 or i == sizes.num_layers - 1 else "sliding_attention"
            for i in range(sizes.num_layers)
        ],
        "max_position_embeddings": 4096,
    }
    audio = {  # a tower the size of the vision one: the fuse must keep it as the seed's checkpoint has one
        "model_type": "gemma4_audio",
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "subsampling_conv_channels": [8, 4],
        "output_proj_dims": 32,
    }
    vision = {
        "model_type": "gemma4_vision",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": sizes.vision_layers,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "global_head_dim": 16,
        "patch_size": 16,
        "position_embedding_size": 1024,
        "default_output_length": 16,
    }
    return {
        "model_type": "gemma4",
        "architectures": ["Gemma4ForConditionalGeneration"],
        "text_config": text,
        "vision_config": vision,
        "audio_config": audio,
        "vocab_size": vocab,
        "hidden_size": sizes.hidden_size,
        "image_token_id": ids["<image>"],
        "audio_token_id": ids["<audio>"],
        "boi_token_id": ids["<boi>"],
        "eoi_token_id": ids["<eoi>"],
        "boa_token_id": ids["<boa>"],
        "eoa_token_id": ids["<eoa>"],
        # A real chat model emits special tokens only to end its turn; a tiny one may emit any: generation
        # stops at each, so none leaks into an answer.
        "eos_token_id": [ids["<end_of_turn>"], ids["<eos>"]] + [ids[t] for t in SPECIAL_TOKENS if t not in STOPS],
        "pad_token_id": ids["<pad>"],
        "vision_soft_tokens_per_image": 16,
    }


def resolved(tower) -> dict:
    """Every field of a tower's config as mlx-vlm resolved it (its defaults and derived values written out)."""
    values = {field.name: getattr(tower, field.name) for field in dataclasses.fields(tower)}
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in values.items()
        if not name.startswith("_")
    }


def build(sizes: Synthetic, out: Path) -> dict:
    """Write config.json, model.safetensors, tokenizer and processor files into `out`."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_vlm.models.gemma4 import Model, ModelConfig
    from mlx_vlm.models.gemma4.config import AudioConfig, TextConfig, VisionConfig

    ids = build_tokenizer(sizes.vocab_size, out)
    config = model_config(sizes, ids)
    model_config_ = ModelConfig.from_dict(config)
    for key, kind in (("text_config", TextConfig), ("vision_config", VisionConfig), ("audio_config", AudioConfig)):
        config[key] = {**config[key], **resolved(kind.from_dict(config[key]))}
    # Left out, mlx-vlm rotates all of a full-attention head; transformers and mlx-lm a quarter of it.
    config["text_config"]["rope_parameters"] = ROPE
    for key, kind in (("text_config", TextConfig), ("vision_config", VisionConfig), ("audio_config", AudioConfig)):
        setattr(model_config_, key, kind.from_dict(config[key]))
    # The towers drawn after the language model and the vision tower, which are drawn as they always were.
    audio, model_config_.audio_config = model_config_.audio_config, None
    mx.random.seed(sizes.seed)
    weights = dict(tree_flatten(Model(model_config_).parameters()))
    model_config_.audio_config = audio
    mx.random.seed(sizes.seed + 1)
    heard = dict(tree_flatten(Model(model_config_).parameters()))
    weights |= {k: v for k, v in heard.items() if k.startswith(("audio_tower.", "embed_audio."))}
    mx.save_safetensors(str(out / "model.safetensors"), weights, metadata={"format": "mlx"})
    (out / "config.json").write_text(json.dumps(config, indent=2))
    generation = {"bos_token_id": ids["<bos>"], "eos_token_id": config["eos_token_id"], "pad_token_id": ids["<pad>"]}
    (out / "generation_config.json").write_text(json.dumps(generation))
    # An image becomes 16 soft tokens, as many as the vision tower gives (`vision_soft_tokens_per_image`).
    processor = {
        "processor_class": "Gemma4Processor",
        "image_processor": {"patch_size": 16, "max_soft_tokens": 16, "pooling_kernel_size": 3},
    }
    (out / "processor_config.json").write_text(json.dumps(processor, indent=2))
    language = sum(v.size for k, v in weights.items() if k.startswith("language_model."))
    return {
        "parameters": sum(v.size for v in weights.values()),
        "language_parameters": language,
        "tensors": len(weights),
        "vocab_size": ids["vocab"],
    }
