"""KV-cache memory and generation speed with and without TurboQuant 4-bit KV quantization.

The same long prompt, greedy, on the same synthetic Gemma 4 (sizes below; real architecture, random
weights): one fresh process per setting, so peak memory is each setting's own. Reported: bytes held by
the KV cache after generation, MLX peak memory, peak RSS, generation tokens/s, and whether the two
settings produced the same tokens.
Run by hand: python benchmarks/kv_cache.py [--prompt-tokens 4000] [--new-tokens 64]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ONE = """
import json, resource, sys
import mlx.core as mx
from mlx_vlm.generate.dispatch import stream_generate
from mlx_vlm.models.cache import make_prompt_cache
from anvil.backends.fuse import load_vlm_with_processor
folder, prompt_tokens, new_tokens, bits, scheme = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
model, processor = load_vlm_with_processor(folder)
tokenizer = processor.tokenizer if hasattr(processor, "tokenizer") else processor
words = "the anvil rings while the smith forges iron at 1200 C and steel at 1100 C . "
text = ""
while len(tokenizer.encode(text)) < prompt_tokens:
    text += words * 50
prompt = tokenizer.decode(tokenizer.encode(text)[:prompt_tokens])
cache = make_prompt_cache(model.language_model)
kw = {} if bits == "none" else {"kv_bits": float(bits), "kv_quant_scheme": scheme, "quantized_kv_start": 0}
mx.reset_peak_memory()
last, tokens = None, []
for last in stream_generate(model, processor, prompt, max_tokens=new_tokens, temperature=0.0, prompt_cache=cache, **kw):
    tokens.append(last.token)
kv_bytes = sum(getattr(c, "nbytes", 0) for c in cache)
print(json.dumps({"kv_bytes": kv_bytes, "mlx_peak_gb": mx.get_peak_memory() / 1e9,
                  "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                  "generation_tps": last.generation_tps, "prompt_tps": last.prompt_tps,
                  "prompt_tokens": last.prompt_tokens, "tokens": tokens}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompt-tokens", type=int, default=4000)
    ap.add_argument("--new-tokens", type=int, default=64)
    args = ap.parse_args()
    from anvil.backends import synthetic
    from anvil.recipe.models import Synthetic

    with tempfile.TemporaryDirectory(prefix="anvil-kv-bench-") as tmp:
        folder = Path(tmp)
        # Wider heads and more layers than the demo model, so the cache is a real share of memory.
        synthetic.build(
            Synthetic(hidden_size=256, intermediate_size=512, num_layers=8, num_heads=4, head_dim=64), folder
        )
        results = {}
        for name, bits, scheme in (("bf16/fp32 cache", "none", "none"), ("turboquant 4-bit", "4", "turboquant")):
            done = subprocess.run(
                [sys.executable, "-c", ONE, str(folder), str(args.prompt_tokens), str(args.new_tokens), bits, scheme],
                capture_output=True,
                text=True,
            )
            if done.returncode:
                raise SystemExit(done.stderr[-3000:])
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        base, quant = results["bf16/fp32 cache"], results["turboquant 4-bit"]
        for name, r in results.items():
            print(
                f"{name:17s} KV cache {r['kv_bytes'] / 1e6:8.2f} MB   MLX peak {r['mlx_peak_gb']:.3f} GB   "
                f"peak RSS {r['rss_gb']:.3f} GB   generation {r['generation_tps']:7.1f} tok/s   "
                f"prompt {r['prompt_tokens']} tokens"
            )
        print(f"KV bytes ratio (plain / turboquant): {base['kv_bytes'] / max(quant['kv_bytes'], 1):.2f}x")
        print(f"generation tok/s ratio (turboquant / plain): {quant['generation_tps'] / base['generation_tps']:.2f}")
        same = sum(a == b for a, b in zip(base["tokens"], quant["tokens"], strict=False))
        print(f"identical greedy tokens: {same}/{len(base['tokens'])}")


if __name__ == "__main__":
    main()
