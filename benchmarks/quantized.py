"""A quantized node against its parent: decode tokens/s (as mlx-vlm reports it, on the same number of
tokens, in interleaved repeats: median and range), MLX peak memory and size on disk, on the same prompts
(greedy), in the same run: the measure the quantize stage records.

Builds a synthetic Gemma 4 (real architecture, random float32 weights; wider than the demo model so the
weights are a real share of memory), quantizes it with Anvil's backend (mlx-vlm's converter) at 4 and 8
bits, and prints each one's figures and ratios against the parent.
Run by hand: python benchmarks/quantized.py [--new-tokens 128] [--hidden 512] [--repeats 3]"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

PROMPTS = ["What is 17 * 23?", "At what temperature do I forge iron?", "Which is better, tea or coffee?"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
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
        results = quantize.speeds(folders, PROMPTS, args.new_tokens, repeats=args.repeats)
        base = results["parent (float32)"]
        for name, r in results.items():
            low, high = r["tokens_per_second_range"]
            r["bytes"] = sizes(folders[name])["total"]
            print(
                f"{name:17s} size {r['bytes'] / 1e6:7.1f} MB ({r['bytes'] / sizes(parent)['total']:.2f}x)   "
                f"decode {r['tokens_per_second']:7.1f} tok/s [{low:.1f}-{high:.1f}] "
                f"({r['tokens_per_second'] / base['tokens_per_second']:.2f}x)   "
                f"MLX peak {r['peak_memory_gb'] * 1e3:7.1f} MB ({r['peak_memory_gb'] / base['peak_memory_gb']:.2f}x)   "
                f"on {r['tokens']} tokens"
            )


if __name__ == "__main__":
    main()
