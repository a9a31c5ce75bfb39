"""Evaluation with requests at once, against sending them one after the other, in one run:

- generation: the same chat requests to a tiny synthetic Gemma 4 behind mlx-vlm's server (which batches
  concurrent requests), one at a time and then 1 / 4 / 8 at once, through Anvil's `in_order`;
- judging: the eval stage's judge calls with a command judge that sleeps 1 s per call, sequential and
  with `judge.concurrency` 8.

Run by hand: python benchmarks/eval_concurrency.py [--requests 16] [--max-tokens 32]"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from anvil.backends import synthetic
from anvil.backends.server import chat, free_port, running
from anvil.evaluation.judges import Judging
from anvil.evaluation.parallel import in_order
from anvil.recipe.evaluation import Judge
from anvil.recipe.models import Synthetic
from anvil.recipe.serving import Serve
from anvil.recipe.suite import Scoring

SLEEPY_JUDGE = "import json, sys, time; sys.stdin.read(); time.sleep(1); print(json.dumps({'score': 3}))"


def generation(folder: Path, requests: int, max_tokens: int) -> tuple[dict[int, float], dict[int, float]]:
    """Generated tokens per second at each concurrency, and the share of greedy answers equal to those
    generated one at a time (the server's batched arithmetic need not be bit-identical)."""
    prompts = [f"Tell me about forging steel, part {i}." for i in range(requests)]
    rates, same, alone = {}, {}, []
    with running(folder, Serve(port=free_port(), max_tokens=max_tokens), None) as server:
        chat(server, [{"role": "user", "content": "warm up"}], max_tokens)
        for concurrency in (1, 4, 8):

            def ask(prompt: str) -> tuple[int, str]:
                reply = chat(server, [{"role": "user", "content": prompt}], max_tokens)
                return reply["usage"]["completion_tokens"], reply["choices"][0]["message"]["content"]

            t0 = time.perf_counter()
            answers = [answer for _, answer in in_order(ask, prompts, concurrency)]
            rates[concurrency] = sum(n for n, _ in answers) / (time.perf_counter() - t0)
            alone = alone or [text for _, text in answers]
            same[concurrency] = sum(a == b for a, (_, b) in zip(alone, answers, strict=True)) / len(prompts)
    return rates, same


def judging(folder: Path, calls: int) -> dict[int, float]:
    """Seconds to judge `calls` transcripts with a judge that takes 1 s a call, by concurrency."""
    (folder / "judge.py").write_text(SLEEPY_JUDGE)
    test = Scoring(id="t", category="c", rubric="be good")
    walls = {}
    for concurrency in (1, 8):
        judge = Judge(kind="command", argv=[sys.executable, str(folder / "judge.py")], concurrency=concurrency)
        judge_one = Judging(judge, folder / f"cache{concurrency}")
        transcripts = [
            {
                "messages": [{"role": "assistant", "content": f"answer {i}"}],
                "final": f"answer {i}",
                "tools_called": [],
                "turn_limit_hit": False,
            }
            for i in range(calls)
        ]
        t0 = time.perf_counter()
        list(in_order(lambda t, judged=judge_one: judged(test, t), transcripts, concurrency))
        walls[concurrency] = time.perf_counter() - t0
    return walls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="anvil-concurrency-") as tmp:
        model = Path(tmp) / "model"
        model.mkdir()
        synthetic.build(Synthetic(hidden_size=128, intermediate_size=256, num_layers=4), model)
        rates, same = generation(model, args.requests, args.max_tokens)
        for concurrency, rate in rates.items():
            print(
                f"generation, {concurrency} at once: {rate:7.1f} tokens/s  ({rate / rates[1]:.2f}x one at a time), "
                f"{same[concurrency]:.0%} of greedy answers as one at a time"
            )
        walls = judging(Path(tmp), args.requests)
        print(
            f"judging {args.requests} calls of 1 s: sequential {walls[1]:.1f}s, 8 at once {walls[8]:.1f}s "
            f"({walls[1] / walls[8]:.1f}x faster)"
        )


if __name__ == "__main__":
    main()
