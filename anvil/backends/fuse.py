"""The VLM-aware fuse: W' = W + scale * (A @ B).T merged into the multimodal checkpoint, shard by shard.

mlx-lm's LoRALinear computes y = x @ W.T + scale * (x @ A) @ B with A: (in, r) and B: (r, out), so the
merged weight is W + scale * (A @ B).T, shape (out, in). Only the adapted language-model projections
change; every other tensor (vision and audio towers, embeddings, norms) is written back untouched, and
every non-weight file (config, tokenizer, processor, chat template) is copied as it is. Peak memory is
one shard plus the adapter, not the model."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from anvil.backends import tensors
from anvil.errors import AnvilError


def _adapter_modules(adapter: Path) -> tuple[float, dict[str, tuple]]:
    config = json.loads((adapter / "adapter_config.json").read_text())
    if config.get("fine_tune_type", "lora") != "lora":
        raise AnvilError(f"{adapter}: only LoRA adapters can be fused (found {config['fine_tune_type']})")
    weights = tensors.read(adapter / "adapters.safetensors")
    modules = {}
    for key in weights:
        if key.endswith(".lora_a"):
            module = key.removesuffix(".lora_a")
            modules[module] = (weights[key], weights[f"{module}.lora_b"])
    return float(config["lora_parameters"]["scale"]), modules


def _checkpoint_names(module: str) -> tuple[str, ...]:
    """Where an adapter module (mlx naming: language_model.model.layers.N...) lives in a checkpoint:
    the same name in mlx-vlm's layout, `model.language_model.layers.N...` in Hugging Face's."""
    names: tuple[str, ...] = (module,)
    if module.startswith("language_model.model."):
        names += ("model.language_model." + module.removeprefix("language_model.model."),)
    return names


def shards(checkpoint: Path) -> list[Path]:
    found = sorted(checkpoint.glob("*.safetensors"))
    if not found:
        raise AnvilError(f"{checkpoint}: no *.safetensors weights (expected a model checkpoint folder)")
    return found


def fuse(parent: Path, adapter: Path, out: Path, progress: Callable[[float, str], None] = lambda f, m: None) -> dict:
    import mlx.core as mx

    config = json.loads((parent / "config.json").read_text())
    if "quantization" in config or "quantization_config" in config:
        raise AnvilError(
            f"{parent}: quantized checkpoints are refused: merging into quantized weights would silently lose "
            "the update; fuse into the bf16/fp32 checkpoint and quantize the result"
        )
    scale, modules = _adapter_modules(adapter)
    by_weight = {f"{name}.weight": module for module in modules for name in _checkpoint_names(module)}
    merged: list[str] = []
    files = shards(parent)
    total_bytes = 0
    for i, shard in enumerate(files, start=1):
        weights, metadata = tensors.read_with_metadata(shard)
        for key in [k for k in weights if k in by_weight]:
            a, b = modules[by_weight[key]]
            w = weights[key]
            delta = (scale * (a.astype(mx.float32) @ b.astype(mx.float32))).T
            weights[key] = (w.astype(mx.float32) + delta).astype(w.dtype)
            merged.append(by_weight[key])
        mx.save_safetensors(str(out / shard.name), weights, metadata={**metadata, "format": "mlx"})
        total_bytes += sum(v.nbytes for v in weights.values())
        del weights
        progress(i / (len(files) + 1), f"fused {shard.name}")
    missing = sorted(set(modules) - set(merged))
    if missing:
        raise AnvilError(f"{adapter}: adapter modules not found in {parent}: {', '.join(missing[:5])}")
    for item in parent.iterdir():
        if item.suffix == ".safetensors" or item.name == "model.safetensors.index.json":
            continue
        if item.is_file():
            shutil.copy2(item, out / item.name)
    index = parent / "model.safetensors.index.json"
    if index.exists():
        data = json.loads(index.read_text())
        data["metadata"] = {**data.get("metadata", {}), "total_size": total_bytes}
        (out / index.name).write_text(json.dumps(data, indent=2))
    return {"merged_modules": len(merged), "scale": scale, "shards": len(files)}


def max_logit_difference(parent: Path, adapter: Path, fused: Path, prompts: list[str]) -> float:
    """Largest |logit| difference between parent + adapter (mlx-lm's LoRA layers) and the fused weights."""
    import mlx.core as mx
    from mlx_lm import load

    reference, tokenizer = load(str(parent), adapter_path=str(adapter))
    candidate, _ = load(str(fused))
    worst = 0.0
    for prompt in prompts:
        tokens = mx.array([tokenizer.encode(prompt)])
        diff = mx.abs(reference(tokens).astype(mx.float32) - candidate(tokens).astype(mx.float32)).max()
        worst = max(worst, float(diff.item()))  # type: ignore[arg-type]  # the max of real numbers
    return worst


def weight_dtype(folder: Path) -> str:
    """The dtype of a checkpoint's projection weights (`float32`, `bfloat16`, ...), read from the
    safetensors headers alone."""
    names = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}
    for shard in shards(folder):
        with open(shard, "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        for key, info in header.items():
            if key.endswith("q_proj.weight"):
                return names.get(info["dtype"], info["dtype"].lower())
    raise AnvilError(f"{folder}: no q_proj weights found (expected a language model checkpoint)")


def load_vlm_with_processor(folder: Path):
    """mlx-vlm's load, without its warnings about the audio tower a checkpoint does not have."""
    import logging
    import warnings

    from mlx_vlm import load

    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load(str(folder))
    finally:
        logging.disable(logging.NOTSET)


def load_vlm(folder: Path):
    return load_vlm_with_processor(folder)[0]
