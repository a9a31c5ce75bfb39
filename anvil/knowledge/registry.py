"""The knowledge benchmarks, by the name a recipe gives them."""

from __future__ import annotations

from anvil.knowledge import gsm8k, mmlu_pro, qa
from anvil.knowledge.protocol import Benchmark

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (gsm8k.BENCHMARK, mmlu_pro.BENCHMARK, qa.BENCHMARK)}
