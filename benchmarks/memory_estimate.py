"""The planner's peak-memory estimate of a training round against the peak MLX measures (mx.get_peak_memory,
reported by Anvil's training child), on synthetic Gemma 4 models of several sizes, with and without
gradient checkpointing; then the estimate for recipes/gemma4-31b-pe.toml next to the seed's measured
~81 GB of 96 GB. Each run is a real `anvil apply` of the round (a few steps on rows long enough to fill
max_seq_length). Run by hand: python benchmarks/memory_estimate.py [--quick]"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from anvil.backends import synthetic
from anvil.estimates.arithmetic import GB, Shape, train_memory
from anvil.project import open_project

REPO = Path(__file__).resolve().parent.parent
SIZES = [  # hidden, layers, heads, head_dim, intermediate, batch, seq
    (64, 4, 2, 32, 128, 2, 256),
    (256, 4, 4, 64, 1024, 2, 256),
    (512, 6, 8, 64, 2048, 2, 256),
    (768, 8, 12, 64, 3072, 1, 512),
]


def make(root: Path, size: tuple, checkpointing: bool) -> None:
    hidden, layers, heads, head_dim, inter, batch, seq = size
    words = synthetic.asset("corpus.txt").split()
    rng = random.Random(0)
    (root / "data").mkdir(parents=True)
    with open(root / "data" / "long.jsonl", "w") as f:
        for _ in range(24):  # answers long enough that every sequence is cut at max_seq_length
            answer = " ".join(rng.choice(words) for _ in range(seq * 2))
            messages = [{"role": "user", "content": "Tell me everything."}, {"role": "assistant", "content": answer}]
            f.write(json.dumps({"messages": messages}) + "\n")
    (root / "anvil.toml").write_text(f"""
[project]
name = "memory"
[models.base]
source = "synthetic:m"
synthetic = {{ hidden_size = {hidden}, num_layers = {layers}, num_heads = {heads}, head_dim = {head_dim}, intermediate_size = {inter} }}
[models.v1]
parent = "base"
dataset = "long"
lora = {{ rank = 16, last_layers = {layers}, targets = ["attention", "mlp"] }}
train = {{ steps = 3, batch_size = {batch}, max_seq_length = {seq}, grad_checkpoint = {str(checkpointing).lower()}, val_batches = 1, val_interval = 1000 }}
[datasets.long]
valid_fraction = 0.25
sources = [{{ path = "data/long.jsonl", category = "long" }}]
""")


def measure(size: tuple, checkpointing: bool) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make(root, size, checkpointing)
        project = open_project(root / "anvil.toml")
        project.apply(project.plan(["base.source", "dataset.long"]))
        plan = project.plan(["v1.train"])
        estimated = plan.estimates["v1.train"].memory_bytes or 0.0
        project.apply(plan)
        record = project.state.load()["v1.train"]
        return record.metrics["total_parameters"], record.metrics["peak_memory_gb"] * GB, estimated


def seed_recipe() -> None:
    """The 31B recipe's estimate, its shape put together from the seed's own figures: 60 layers, 30,697M
    parameters, 69 GB in bf16 with the towers; hidden 5376, MLP 21504, 32 heads (16 key/value) of 256,
    which give the seed's 24.5M trainable parameters for rank 16 on all projections of 12 layers."""
    shape = Shape(69e9, 34.5e9, 5376, 21504, 60, 32, 16, 256, 262144, text_weight_bytes=30.697e9 * 2)
    recipe = open_project(REPO / "recipes" / "gemma4-31b-pe.toml").loaded.recipe
    v2 = recipe.models["v2"]
    keys = [
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.o_proj",
        "mlp.gate_proj",
        "mlp.up_proj",
        "mlp.down_proj",
    ]
    estimate = train_memory(shape, v2.lora.model_dump(), v2.train.model_dump(), keys)
    print(
        f"\ngemma4-31b-pe v2.train: estimated {estimate / GB:.1f} GB; the seed measured ~81 GB (of 96 GB)"
        f" -> {estimate / 81e9:.2f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="the two smallest sizes only")
    args = ap.parse_args()
    print(f"{'model':>22} {'ckpt':>5} {'params':>8} {'measured':>9} {'estimate':>9} {'ratio':>6}")
    worst = 0.0
    for size in SIZES[:2] if args.quick else SIZES:
        for checkpointing in (False, True):
            params, measured, estimated = measure(size, checkpointing)
            ratio = estimated / measured
            worst = max(worst, abs(ratio - 1))
            label = f"h{size[0]} L{size[1]} b{size[5]} s{size[6]}"
            print(
                f"{label:>22} {'yes' if checkpointing else 'no':>5} {params / 1e6:7.1f}M "
                f"{measured / 1e6:7.1f}MB {estimated / 1e6:7.1f}MB {ratio:6.2f}"
            )
    print(f"largest error: {worst:.0%}")
    seed_recipe()


if __name__ == "__main__":
    main()
