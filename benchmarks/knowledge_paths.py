"""A knowledge benchmark by Anvil's hand-written protocol against the same benchmark as an lm-eval task, in one
run: the same GSM8K-CoT items from evals/knowledge, the same tiny synthetic Gemma 4 behind one mlx-vlm server,
the same greedy requests streamed to the stop sequence (backends/server.chat_until) at the same concurrency.
The harness path's time includes importing lm-eval and reading its task; both paths' scores must agree.

Run by hand (needs the extra: pip install 'anvil[lm-eval]'):
    python benchmarks/knowledge_paths.py [--n 24] [--max-tokens 32] [--concurrency 4]"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from anvil.backends import harness, synthetic
from anvil.backends.server import chat, chat_until, free_port, running
from anvil.evaluation.parallel import in_order
from anvil.knowledge import data
from anvil.knowledge.protocol import truncate
from anvil.knowledge.registry import BENCHMARKS
from anvil.recipe.models import Synthetic
from anvil.recipe.serving import Serve

ROOT = Path(__file__).resolve().parents[1]
ROWS = ROOT / "evals/knowledge/gsm8k/test.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        folder.mkdir()
        synthetic.build(Synthetic(), folder)
        with running(folder, Serve(port=free_port(), max_tokens=args.max_tokens), None) as server:
            chat(server, [{"role": "user", "content": "warm up"}], 4)

            def answer(prompts: list[harness.Prompt]) -> list[str]:
                def one(prompt: harness.Prompt) -> str:
                    turns, max_tokens, stop = prompt
                    return truncate(chat_until(server, turns, max_tokens, stop)[0], stop)

                return [text for _, text in in_order(one, prompts, args.concurrency)]

            bench = BENCHMARKS["gsm8k_cot"]
            t0 = time.perf_counter()
            items = data.sample(data.read(ROWS, "gsm8k_cot", "gsm8k"), args.n, 0)
            turns = [bench.messages(item, bench.default_shots, "one_turn") for item in items]
            responses = answer([(t, args.max_tokens, bench.stop) for t in turns])
            mine = [bench.filters["flexible"](r, item).correct for r, item in zip(responses, items, strict=True)]
            protocol_s = time.perf_counter() - t0

            t0 = time.perf_counter()
            task = harness.load("gsm8k_cot", ROOT, data=ROWS, fewshot=None, metric=None, max_tokens=args.max_tokens)
            built = harness.build(task)
            loaded_s = time.perf_counter() - t0
            keys = {bench.key(item): i for i, item in enumerate(items)}
            indices = sorted(i for i, doc in enumerate(built.eval_docs) if bench.key(doc) in keys)
            graded = harness.run(task, built, indices, answer, "one_turn")
            harness_s = time.perf_counter() - t0
    theirs = [g["correct"]["flexible-extract"] for g in graded]
    print(f"GSM8K-CoT, {args.n} items, {args.max_tokens} tokens, concurrency {args.concurrency}")
    print(f"  Anvil's protocol   {protocol_s:6.2f} s   score {sum(mine)}/{len(mine)}")
    print(f"  lm-eval task       {harness_s:6.2f} s   score {sum(theirs)}/{len(theirs)}  ({loaded_s:.2f} s to load)")
    print(f"  ratio              {harness_s / protocol_s:6.2f}x   scores agree: {sorted(mine) == sorted(theirs)}")


if __name__ == "__main__":
    main()
