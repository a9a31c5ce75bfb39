"""The VLM-aware fuse: W' = W + scale * (A @ B).T merged into the multimodal checkpoint, shard by shard.

mlx-lm's LoRALinear computes y = x @ W.T + scale * (x @ A) @ B with A: (in, r) and B: (r, out), so the
merged weight is W + scale * (A @ B).T, shape (out, in). Only the adapted language-model projections
change; every other tensor (vision and audio towers, embeddings, norms) is written back untouched, and
every non-weight file (config, tokenizer, processor, chat template) is copied as it is. Shards are
streamed a tensor at a time (backends/shards.py) and each merged projection is verified from the file
written: peak memory is the adapter and one projection, not a shard, let alone the model twice."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

from anvil.backends import shards as stream
from anvil.backends import tensors
from anvil.errors import AnvilError
from anvil.state.adapters import checkpoint_names
from anvil.state.checkpoint import read_header, shards


def _adapter_modules(adapter: Path) -> tuple[float, dict[str, tuple]]:
    config = json.loads((adapter / "adapter_config.json").read_text())
    if config.get("fine_tune_type", "lora") != "lora":
        raise AnvilError(f"{adapter}: only LoRA adapters can be fused (found {config['fine_tune_type']})")
    import mlx.core as mx
    import numpy as np

    weights = tensors.read(adapter / "adapters.safetensors")

    def as_numpy(array):  # float32: what the merge computes in
        return np.array(array.astype(mx.float32))

    modules = {}
    for key in weights:
        if key.endswith(".lora_a"):
            module = key.removesuffix(".lora_a")
            modules[module] = (as_numpy(weights[key]), as_numpy(weights[f"{module}.lora_b"]))
    return float(config["lora_parameters"]["scale"]), modules


def fuse(parent: Path, adapter: Path, out: Path, progress: Callable[[float, str], None] = lambda f, m: None) -> dict:
    """Merge the adapter into `parent`'s shards, written to `out` one tensor at a time, each merged
    projection then checked from the written file (`verify`)."""
    config = json.loads((parent / "config.json").read_text())
    if "quantization" in config or "quantization_config" in config:
        raise AnvilError(
            f"{parent}: quantized checkpoints are refused: merging into quantized weights would silently lose "
            "the update; fuse into the bf16/fp32 checkpoint and quantize the result"
        )
    import numpy as np

    scale, modules = _adapter_modules(adapter)
    by_weight = {f"{name}.weight": module for module in modules for name in checkpoint_names(module)}

    def merge(name: str, rows: slice, w):
        a, b = modules[by_weight[name]]
        update = np.matmul(b.T[rows], a.T)  # rows of (A @ B).T, computed as (out, in) directly; float32, BLAS
        update *= scale  # in place: the same float32 operations as w += scale * (...), one temporary fewer
        w += update
        return w

    files, jobs = shards(parent), []
    for shard in files:
        head, _ = read_header(shard)
        names = {name for name in head if name in by_weight}
        jobs.append(
            stream.Rewrite(shard, out / shard.name, names, {**(head.get("__metadata__") or {}), "format": "mlx"})
        )
    missing = sorted(set(modules) - {by_weight[name] for job in jobs for name in job.names})
    if missing:  # known from the headers alone: refused before anything is written
        raise AnvilError(f"{adapter}: adapter modules not found in {parent}: {', '.join(missing[:5])}")
    try:
        sizes = stream.rewrite_all(
            jobs, merge, lambda i: progress((i + 1) / (len(files) + 2), f"wrote {files[i].name}")
        )
    except ValueError as e:
        raise AnvilError(f"{parent}: {e}") from None
    total_bytes, worst = sum(sizes), 0.0
    for job in jobs:
        for name in sorted(job.names):
            worst = max(worst, verify(job.src, job.dst, name, modules[by_weight[name]], scale))
    progress((len(files) + 1) / (len(files) + 2), "every merged projection checked")
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
    return {
        "merged_modules": sum(len(job.names) for job in jobs),
        "scale": scale,
        "shards": len(files),
        "max_projection_diff": worst,
    }


def verify(original: Path, fused: Path, name: str, adapter: tuple, scale: float, rows: int = 64) -> float:
    """How far the fused projection, read back from its file, is from parent + adapter on random inputs,
    over a random sample of its output rows: max |x W'^T - (x W^T + scale (x A) B)|, relative to the
    largest output. A merge that is wrong (transposed, mis-scaled, the wrong module) is wrong in every
    row; reading a sample keeps the check at a few kB of reads per projection."""
    import numpy as np

    info, start = _located(original, name)
    picked = sorted(random.Random(name).sample(range(info["shape"][0]), min(rows, info["shape"][0])))
    w = stream.read_tensor(original, info, start, picked)
    w_fused = stream.read_tensor(fused, *_located(fused, name), picked)
    a, b = adapter
    x = np.random.default_rng(0).standard_normal((4, w.shape[1]), dtype=np.float32)
    expected = x @ w.T + scale * ((x @ a) @ b[:, picked])
    return float(np.abs(x @ w_fused.T - expected).max() / max(float(np.abs(expected).max()), 1e-6))


def _located(path: Path, name: str) -> tuple[dict, int]:
    head, start = read_header(path)
    return head[name], start


def load_vlm_with_processor(folder: Path, lazy: bool = False):
    """mlx-vlm's load, without its warnings about the audio tower a checkpoint does not have. `lazy`: the
    weights are checked against the model (names, shapes) but not read."""
    import logging
    import warnings

    from mlx_vlm import load

    def not_mlx_vlms(record: logging.LogRecord) -> bool:  # its warnings go to the root logger
        return "mlx_vlm" not in record.pathname or record.levelno > logging.WARNING

    root = logging.getLogger()
    root.addFilter(not_mlx_vlms)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load(str(folder), lazy=lazy)
    finally:
        root.removeFilter(not_mlx_vlms)


def load_vlm(folder: Path, lazy: bool = False):
    return load_vlm_with_processor(folder, lazy)[0]
