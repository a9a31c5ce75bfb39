"""Anvil's train stage against mlx-lm-lora run directly, same tiny model, data and settings.

Each side runs in its own fresh process (one-time compilation included for both), twice, in
alternating order. Compared: steady-state tokens/s (the first step, which compiles, left out) as each
side's trainer reports it. mlx-lm-lora alone needs Anvil's narrow Metal-only guard to run on a CPU
(see anvil/backends/lora_worker.py); nothing else of Anvil is in its path. Anvil's side includes starting
its training child process, as the train stage does.
Run by hand: python benchmarks/train_overhead.py [--steps 60]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SETUP = """
import json, sys
from pathlib import Path
from anvil.recipe.models import Synthetic
from anvil.backends import synthetic
from anvil.project import open_project
root = Path(sys.argv[1])
(root / "base").mkdir()
synthetic.build(Synthetic(hidden_size=128, intermediate_size=256), root / "base")
"""

ANVIL = """
import json, sys, time
from pathlib import Path
from anvil.backends import lora
from anvil.recipe.models import Lora, Train
root, steps = Path(sys.argv[1]), int(sys.argv[2])
out = Path(sys.argv[3]); out.mkdir()
t0 = time.perf_counter()
m = lora.train(root / "base", root / "data", Lora(rank=16, last_layers=4), Train(steps=steps, batch_size=4,
    learning_rate=2e-3, max_seq_length=256, val_interval=1000, checkpoint_interval=1000), out, out / "ck")
print(json.dumps({"tokens_per_second": m["tokens_per_second"], "wall_s": time.perf_counter() - t0}))
"""

DIRECT = """
import json, sys, time, types
from pathlib import Path
from mlx_lm.tuner.callbacks import TrainingCallback
from mlx_lm_lora import train as T
from anvil.backends.lora_worker import metal_only_calls_guarded
root, steps = Path(sys.argv[1]), int(sys.argv[2])
speeds = []
class Speed(TrainingCallback):
    def on_train_loss_report(self, info):
        speeds.append(info["tokens_per_second"])
args = types.SimpleNamespace(**T.CONFIG_DEFAULTS)
args.__dict__.update(model=str(root / "base"), train=True, data=str(root / "data"), iters=steps, batch_size=4,
    learning_rate=2e-3, max_seq_length=256, steps_per_eval=1000, save_every=1000, steps_per_report=1,
    num_layers=4, lora_parameters={"rank": 16, "scale": 10.0, "dropout": 0.0}, adapter_path=sys.argv[3],
    fuse=False, wandb=None, mask_prompt=False, seed=0)
t0 = time.perf_counter()
with metal_only_calls_guarded():
    T.run(args, training_callback=Speed())
steady = speeds[1:] or speeds
print(json.dumps({"tokens_per_second": sum(steady) / len(steady), "wall_s": time.perf_counter() - t0}))
"""


def run(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="anvil-train-bench-") as tmp:
        root = Path(tmp)
        run(SETUP, str(root))
        (root / "data").mkdir()
        rows = (REPO / "data" / "domain.jsonl").read_text().splitlines()
        (root / "data" / "train.jsonl").write_text("\n".join(rows[:54]) + "\n")
        (root / "data" / "valid.jsonl").write_text("\n".join(rows[54:]) + "\n")
        results: dict[str, list[dict]] = {"anvil": [], "mlx-lm-lora": []}
        for i in range(args.rounds):
            order = [("anvil", ANVIL), ("mlx-lm-lora", DIRECT)]
            for name, code in order if i % 2 == 0 else reversed(order):
                results[name].append(run(code, str(root), str(args.steps), str(root / f"{name}-{i}")))
        for name, runs in results.items():
            speeds = ", ".join(f"{r['tokens_per_second']:.1f}" for r in runs)
            walls = ", ".join(f"{r['wall_s']:.1f}s" for r in runs)
            print(f"{name:12s} tokens/s per run: {speeds}   wall: {walls}")
        anvil = sum(r["tokens_per_second"] for r in results["anvil"]) / args.rounds
        direct = sum(r["tokens_per_second"] for r in results["mlx-lm-lora"]) / args.rounds
        print(f"anvil / mlx-lm-lora tokens/s: {anvil / direct:.3f}  (overhead {100 * (1 - anvil / direct):+.1f}%)")


if __name__ == "__main__":
    main()
