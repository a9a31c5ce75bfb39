"""Evaluation's generation against its floor, in one run, on the same prompts and the same tiny synthetic Gemma 4:

- served: mlx-vlm's server (Anvil's evaluation path) one request at a time, then 4 / 8 / 16 at once
  through Anvil's `in_order`;
- in process: mlx-vlm's own `batch_generate` on the same prompts in batches of 4 / 8 / 16 (no HTTP, no
  server scheduling: what the hardware gives one process).

Tokens per second are generated tokens over wall time; the ratio is served / in-process at the same size
(the issue's goal: >= 0.8). The server's cost per generated token (HTTP, a detokenizer and a queue per request,
its scheduling loop) is fixed, so the ratio depends on how long one decode step of the model takes: `--hidden-size`,
`--layers` and `--intermediate-size` build a larger synthetic model to show it at another step time.
Run by hand: python benchmarks/eval_throughput.py [--prompts 32] [--max-tokens 32] [--hidden-size 64] [--layers 4]"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from anvil.backends import synthetic
from anvil.backends.server import chat, free_port, running
from anvil.evaluation.parallel import in_order
from anvil.recipe.models import Synthetic
from anvil.recipe.serving import Serve

SIZES = (4, 8, 16)


def prompts_of(count: int) -> list[str]:
    topics = ("steel", "copper", "a blade", "an anvil", "quenching", "tempering", "a forge", "bronze")
    return [f"Tell me about {topics[i % len(topics)]}, part {i}." for i in range(count)]


def served(folder: Path, prompts: list[str], max_tokens: int) -> dict[int, float]:
    rates = {}
    with running(folder, Serve(port=free_port(), max_tokens=max_tokens), None) as server:
        chat(server, [{"role": "user", "content": "warm up"}], max_tokens)
        for concurrency in (1, *SIZES):

            def ask(prompt: str) -> int:
                reply = chat(server, [{"role": "user", "content": prompt}], max_tokens)
                return reply["usage"]["completion_tokens"]

            t0 = time.perf_counter()
            tokens = sum(n for _, n in in_order(ask, prompts, concurrency))
            rates[concurrency] = tokens / (time.perf_counter() - t0)
    return rates


def in_process(folder: Path, prompts: list[str], max_tokens: int) -> dict[int, float]:
    from mlx_vlm import batch_generate, load
    from mlx_vlm.prompt_utils import apply_chat_template

    model, processor = load(str(folder))
    formatted = [apply_chat_template(processor, model.config, [{"role": "user", "content": p}]) for p in prompts]
    batch_generate(model, processor, prompts=formatted[:2], max_tokens=4)  # warm up
    rates = {}
    for size in SIZES:
        t0, tokens = time.perf_counter(), 0
        for start in range(0, len(formatted), size):
            response = batch_generate(model, processor, prompts=formatted[start : start + size], max_tokens=max_tokens)
            tokens += response.stats.generation_tokens
        rates[size] = tokens / (time.perf_counter() - t0)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=Synthetic().hidden_size)
    parser.add_argument("--layers", type=int, default=Synthetic().num_layers)
    parser.add_argument("--intermediate-size", type=int, default=Synthetic().intermediate_size)
    args = parser.parse_args()
    sizes = Synthetic(hidden_size=args.hidden_size, num_layers=args.layers, intermediate_size=args.intermediate_size)
    prompts = prompts_of(args.prompts)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        built = synthetic.build(sizes, folder)
        server_rates = served(folder, prompts, args.max_tokens)
        floor = in_process(folder, prompts, args.max_tokens)
    print(
        f"synthetic Gemma 4, {built['language_parameters'] / 1e6:.1f}M language parameters (hidden {args.hidden_size}, "
        f"{args.layers} layers); {args.prompts} prompts, {args.max_tokens} tokens each, greedy; tokens per second"
    )
    print(f"  served, one at a time      {server_rates[1]:8.1f}")
    for size in SIZES:
        ratio = server_rates[size] / floor[size]
        print(
            f"  {size:2d} at once: served {server_rates[size]:8.1f}   in-process batch {floor[size]:8.1f}   "
            f"served / batch {ratio:4.2f}x   served / one at a time {server_rates[size] / server_rates[1]:4.2f}x"
        )


if __name__ == "__main__":
    main()
