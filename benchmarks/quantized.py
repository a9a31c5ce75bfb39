"""A quantized node against its parent: generation tokens/s, MLX peak memory, peak RSS and size on disk,
each model in a fresh process on the same prompts (greedy), in the same run.

Builds a synthetic Gemma 4 (real architecture, random float32 weights; wider than the demo model so the
weights are a real share of memory), quantizes it with Anvil's backend (mlx-vlm's converter) at 4 and 8
bits, and prints each one's figures and ratios against the parent.
Run by hand: python benchmarks/quantized.py [--new-tokens 128] [--hidden 512]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ONE = """
import json, resource, sys
from pathlib import Path
from anvil.backends.quantize import speed
prompts = ["What is 17 * 23?", "At what temperature do I forge iron?", "Which is better, tea or coffee?"]
found = speed(Path(sys.argv[1]), prompts, int(sys.argv[2]))
found["rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
print(json.dumps(found))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=512)
    args = ap.parse_args()
    from anvil.backends import quantize, synthetic
    from anvil.recipe.models import Synthetic
    from anvil.recipe.quantization import Quantize
    from anvil.state.checkpoint import sizes

    with tempfile.TemporaryDirectory(prefix="anvil-quant-bench-") as tmp:
        parent = Path(tmp) / "parent"
        parent.mkdir()
        synthetic.build(
            Synthetic(
                hidden_size=args.hidden,
                intermediate_size=4 * args.hidden,
                num_layers=8,
                num_heads=4,
                head_dim=args.hidden // 4,
            ),
            parent,
        )
        folders = {"parent (float32)": parent}
        for bits in (8, 4):
            folders[f"{bits}-bit affine"] = out = Path(tmp) / f"q{bits}"
            quantize.quantize(parent, out, Quantize(bits=bits, group_size=64), Path(tmp) / "convert.log")
        results = {}
        for name, folder in folders.items():
            done = subprocess.run(
                [sys.executable, "-c", ONE, str(folder), str(args.new_tokens)], capture_output=True, text=True
            )
            if done.returncode:
                raise SystemExit(done.stderr[-3000:])
            results[name] = json.loads(done.stdout.strip().splitlines()[-1]) | {"bytes": sizes(folder)["total"]}
        base = results["parent (float32)"]
        for name, r in results.items():
            print(
                f"{name:17s} size {r['bytes'] / 1e6:7.1f} MB ({r['bytes'] / base['bytes']:.2f}x)   "
                f"generation {r['tokens_per_second']:7.1f} tok/s ({r['tokens_per_second'] / base['tokens_per_second']:.2f}x)   "
                f"MLX peak {r['peak_memory_gb'] * 1e3:7.1f} MB ({r['peak_memory_gb'] / base['peak_memory_gb']:.2f}x)   "
                f"peak RSS {r['rss_gb']:.3f} GB"
            )


if __name__ == "__main__":
    main()
