"""The fuse's memory and time on a multi-GB checkpoint, against `cp` of the same shards (same run).

Builds a synthetic bf16 checkpoint of --shards shards of --shard-mb MB each (projections of a Gemma-like
text model; the last --adapted fraction of its layers adapted by a rank-16 LoRA, as the seed's 12 of 60),
then, each in a fresh process:
  - cp:    copies the shards (the floor for any fuse: every byte read and written once);
  - merge: the merges alone, in memory, no file (the arithmetic floor: W + scale * (A @ B).T per projection,
           in float32, back to bf16);
  - fuse:  Anvil's fuse, verification included (each merged projection read back and checked).
Printed: wall time and peak RSS of each, fuse/cp ratios, and peak RSS against the largest shard
(targets: peak <= 1.5x the largest shard, wall <= 2x the copy).
Run by hand: python benchmarks/fuse_streaming.py [--shards 4] [--shard-mb 512] [--dir /tmp]"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HIDDEN, INTERMEDIATE, RANK = 2048, 8192, 16
PROJECTIONS = {
    "self_attn.q_proj": (HIDDEN, HIDDEN),
    "self_attn.o_proj": (HIDDEN, HIDDEN),
    "mlp.gate_proj": (INTERMEDIATE, HIDDEN),
    "mlp.down_proj": (HIDDEN, INTERMEDIATE),
}

# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report its parent's peak.
PEAK = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) * 1024"
FUSE = f"""
import sys, time
from pathlib import Path
from anvil.backends import fuse
t0 = time.perf_counter()
metrics = fuse.fuse(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
__import__("os").sync()  # on disk, as the copy is timed
print(time.perf_counter() - t0, {PEAK}, metrics["max_projection_diff"])
"""
MERGE = """
import sys, time
import numpy as np
from anvil.backends import fuse, shards
scale, modules = fuse._adapter_modules(__import__("pathlib").Path(sys.argv[1]))
t0 = time.perf_counter()
with shards._merge_workers() as workers:
    for a, b in modules.values():  # what the fuse does per projection, without the files
        raw = np.full((b.shape[1], a.shape[0]), 0x3C00, dtype=np.uint16).tobytes()
        info = {"dtype": "BF16", "shape": [b.shape[1], a.shape[0]]}
        shards._changed(raw, info, lambda name, rows, w: w.__iadd__(np.matmul(b.T[rows], a.T).__imul__(scale)), "w",
                        None, workers)
print(time.perf_counter() - t0)
"""
BASELINE = f"""
import mlx.core, numpy  # what the fuse process imports, so that both start from the same footprint
print({PEAK})
"""


def build(root: Path, shards: int, shard_mb: int, adapted: float) -> int:
    """The checkpoint and its adapter; returns the largest shard's bytes."""
    import mlx.core as mx
    from safetensors.numpy import save_file

    model, adapter = root / "model", root / "adapter"
    model.mkdir()
    adapter.mkdir()
    rng = np.random.default_rng(0)
    per_layer = sum(out * inp * 2 for out, inp in PROJECTIONS.values())
    layers = shards * (shard_mb << 20) // per_layer
    first_adapted = layers - max(1, round(layers * adapted))
    layer, lora = 0, {}
    for s in range(shards):
        tensors, size = {}, 0
        while size < shard_mb << 20 and layer < layers:
            for name, (out, inp) in PROJECTIONS.items():
                key = f"language_model.model.layers.{layer}.{name}"
                bits = rng.integers(0x3C00, 0x3C80, size=(out, inp), dtype=np.uint16)  # bf16 values near 1
                tensors[f"{key}.weight"] = bits
                size += bits.nbytes
                if layer >= first_adapted:
                    lora[f"{key}.lora_a"] = (rng.standard_normal((inp, RANK)) * 0.01).astype(np.float32)
                    lora[f"{key}.lora_b"] = (rng.standard_normal((RANK, out)) * 0.01).astype(np.float32)
            layer += 1
        bf16 = {name: mx.array(bits).view(mx.bfloat16) for name, bits in tensors.items()}
        mx.save_safetensors(str(model / f"model-{s:05d}.safetensors"), bf16)
        del bf16, tensors
    (model / "config.json").write_text(json.dumps({"model_type": "gemma4", "text_config": {"hidden_size": HIDDEN}}))
    save_file(lora, str(adapter / "adapters.safetensors"))
    (adapter / "adapter_config.json").write_text(
        json.dumps({"fine_tune_type": "lora", "lora_parameters": {"scale": 2.0}})
    )
    return max(p.stat().st_size for p in model.glob("*.safetensors"))


def settle() -> None:
    """On disk, and a moment for the file system to finish with what was removed (a `discard` mount trims
    the freed blocks after the fact, slowing whatever writes next)."""
    os.sync()
    time.sleep(2)


def timed(argv: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{argv[:3]} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0, done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--shard-mb", type=int, default=512)
    ap.add_argument("--adapted", type=float, default=0.2, help="fraction of layers adapted (seed: 12 of 60)")
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--repeat", type=int, default=5, help="pairs of cp and fuse, back to back")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(dir=args.dir, prefix="anvil-fuse-bench-"))
    try:
        largest = build(root, args.shards, args.shard_mb, args.adapted)
        total = sum(p.stat().st_size for p in (root / "model").glob("*.safetensors"))
        floor = int(timed([sys.executable, "-c", BASELINE])[1])
        merge_s = float(timed([sys.executable, "-c", MERGE, str(root / "adapter")])[1])
        copies, fuses = [], []
        fuse_argv = [sys.executable, "-c", FUSE, str(root / "model"), str(root / "adapter"), str(root / "fused")]
        for _attempt in range(args.repeat):  # alternating, each on disk (synced), reading warm files
            shutil.rmtree(root / "copy", ignore_errors=True)
            settle()
            copies.append(timed(["bash", "-c", f"cp -r {root / 'model'} {root / 'copy'} && sync"])[0])
            shutil.rmtree(root / "fused", ignore_errors=True)
            (root / "fused").mkdir()
            settle()
            seconds, peak, diff = (float(x) for x in timed(fuse_argv)[1].split())
            fuses.append(seconds)
        copy_s, fuse_s = min(copies), min(fuses)
        ratios = sorted(f / c for f, c in zip(fuses, copies, strict=True))
        print(f"checkpoint: {args.shards} shards, {total / 1e9:.2f} GB, largest shard {largest / 1e6:.0f} MB")
        print(f"cp:   {copy_s:6.2f} s best, {statistics.median(copies):.2f} s median of {args.repeat} (then sync)")
        print(f"merge arithmetic alone: {merge_s:6.2f} s ({args.adapted:.0%} of the layers adapted)")
        print(f"fuse: {fuse_s:6.2f} s best, {statistics.median(fuses):.2f} s median; max projection diff {diff:.1e}")
        print(
            f"fuse / cp, each pair back to back: median {statistics.median(ratios):.2f}x "
            f"(from {ratios[0]:.2f}x to {ratios[-1]:.2f}x; target <= 2x); best / best {fuse_s / copy_s:.2f}x"
        )
        print(
            f"fuse peak RSS {peak / 1e6:.0f} MB = {peak / largest:.2f}x the largest shard (target <= 1.5x); "
            f"of which {floor / 1e6:.0f} MB is Python with MLX imported, "
            f"{(peak - floor) / largest:.2f}x the shard above that"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
