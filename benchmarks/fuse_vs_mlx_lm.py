"""Anvil's VLM-aware fuse against mlx-lm's own fuse on a checkpoint of a few GB.

Builds a synthetic Gemma 4 (real architecture, random float32 weights, vision tower) of about --gb
gigabytes, re-shards it into ~--shard-mb shards with an index like a Hugging Face checkpoint, adds a
random rank-16 LoRA adapter on all attention + MLP projections of the last 12 layers, then fuses it
with each tool in a fresh process and reports wall seconds and peak RSS (ru_maxrss) of each, and what
each output keeps (vision tower or not).
Run by hand: python benchmarks/fuse_vs_mlx_lm.py [--gb 3] [--shard-mb 500]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ANVIL = """
import sys
from pathlib import Path
from anvil.backends.fuse import fuse
fuse(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
"""


def build(root: Path, gigabytes: float, shard_mb: int) -> tuple[Path, Path]:
    import mlx.core as mx

    from anvil.backends import synthetic
    from anvil.backends.lora import adapter_config
    from anvil.recipe.models import Lora, Synthetic, lora_keys

    hidden, inter = 1024, 4096
    per_layer = 4 * (2 * hidden * hidden + 2 * hidden * 128 + 3 * hidden * inter)  # float32 bytes
    layers = max(13, int(gigabytes * 1e9 / per_layer))
    base = root / "base"
    base.mkdir()
    synthetic.build(
        Synthetic(
            hidden_size=hidden, intermediate_size=inter, num_layers=layers, num_heads=8, head_dim=128, vocab_size=4096
        ),
        base,
    )
    weights = mx.load(str(base / "model.safetensors"))
    (base / "model.safetensors").unlink()
    shard, shards, size = {}, [], 0
    for key in sorted(weights):
        shard[key] = weights[key]
        size += weights[key].nbytes
        if size > shard_mb * 1e6:
            shards.append(shard)
            shard, size = {}, 0
    shards.append(shard)
    index = {"metadata": {}, "weight_map": {}}
    for i, part in enumerate(shards, start=1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        mx.save_safetensors(str(base / name), part, metadata={"format": "mlx"})
        index["weight_map"].update({k: name for k in part})
    (base / "model.safetensors.index.json").write_text(json.dumps(index))

    lora = Lora(rank=16, last_layers=12)
    adapter = root / "adapter"
    adapter.mkdir()
    mx.random.seed(0)
    tensors = {}
    for layer in range(layers - 12, layers):
        for key in lora_keys(lora.targets):
            w = weights[f"language_model.model.layers.{layer}.{key}.weight"]
            name = f"language_model.model.layers.{layer}.{key}"
            tensors[f"{name}.lora_a"] = mx.random.normal((w.shape[1], 16)) * 0.01
            tensors[f"{name}.lora_b"] = mx.random.normal((16, w.shape[0])) * 0.01
    mx.save_safetensors(str(adapter / "adapters.safetensors"), tensors)
    (adapter / "adapter_config.json").write_text(json.dumps(adapter_config(lora, str(base))))
    return base, adapter


# A fresh wrapper per measurement: ru_maxrss of children is the largest child it ever waited for.
MEASURE = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if done.returncode:
    sys.exit(done.stderr[-3000:])
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def timed(cmd: list[str]) -> tuple[float, float]:
    done = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    seconds, kilobytes = done.stdout.split()
    return float(seconds), int(kilobytes) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=3.0)
    ap.add_argument("--shard-mb", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="anvil-fuse-bench-") as tmp:
        root = Path(tmp)
        base, adapter = build(root, args.gb, args.shard_mb)
        size = sum(p.stat().st_size for p in base.glob("*.safetensors"))
        print(f"checkpoint: {size / 1e9:.2f} GB in {len(list(base.glob('*.safetensors')))} shards")
        (root / "anvil-out").mkdir()
        anvil_s, anvil_rss = timed([sys.executable, "-c", ANVIL, str(base), str(adapter), str(root / "anvil-out")])
        mlx_s, mlx_rss = timed(
            [
                sys.executable,
                "-m",
                "mlx_lm",
                "fuse",
                "--model",
                str(base),
                "--adapter-path",
                str(adapter),
                "--save-path",
                str(root / "mlx-lm-out"),
            ]
        )
        for name, out in (("anvil", root / "anvil-out"), ("mlx-lm", root / "mlx-lm-out")):
            config = json.loads((out / "config.json").read_text())
            print(f"{name:7s} output keeps vision_config: {'vision_config' in config}")
        print(f"anvil fuse:  {anvil_s:7.1f} s   peak RSS {anvil_rss:6.2f} GB")
        print(f"mlx-lm fuse: {mlx_s:7.1f} s   peak RSS {mlx_rss:6.2f} GB")
        print(f"time ratio anvil / mlx-lm: {anvil_s / mlx_s:.2f}")


if __name__ == "__main__":
    main()
