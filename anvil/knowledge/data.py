"""A benchmark's rows: where they come from (a local JSONL file, or a file of a Hugging Face dataset repo,
which backends/hub.py downloads), how they are read and checked row by row, and which `n` of them a run
uses (the same for every model: drawn by seed, then in file order, so runs of different models pair item
by item)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from anvil.errors import InvalidInput, Problem
from anvil.knowledge.protocol import Item
from anvil.knowledge.registry import BENCHMARKS

MAX_PROBLEMS = 20


def sources(benchmark: str, data: str | None, fewshot: str | None) -> tuple[str, str | None]:
    """Where a benchmark's rows and exemplars come from: the recipe's, or without `data` the Hub's test
    split and, for MMLU-Pro, its validation split."""
    spec = BENCHMARKS[benchmark]
    return data or spec.hub_data, fewshot or (spec.hub_fewshot if data is None else None)


def metric_name(benchmark: str, data: str | None, fewshot: str | None) -> str:
    """The name its scores go by: the benchmark, marked `_0shot` when it runs without the exemplars its
    protocol needs (MMLU-Pro's come from a split that does not ship with Anvil)."""
    exemplars = sources(benchmark, data, fewshot)[1]
    return benchmark if BENCHMARKS[benchmark].default_shots or exemplars else f"{benchmark}_0shot"


def read(path: Path, benchmark: str | None, shown_as: str) -> list[Item]:
    """Every row, checked for what the benchmark needs (None: any JSON object, as few-shot exemplars are);
    InvalidInput names each bad row's line."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows: list = pq.read_table(path).to_pylist()
        numbered = list(enumerate(rows, start=1))
    else:
        try:
            lines = path.read_text(encoding="utf-8").split("\n")  # not splitlines: U+2028 may sit inside a string
        except UnicodeDecodeError as e:
            raise InvalidInput([Problem(shown_as, 0, 0, "", f"not UTF-8 text ({e.reason})")]) from None
        numbered, problems = [], []
        for lineno, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    numbered.append((lineno, json.loads(line)))
                except (json.JSONDecodeError, RecursionError):
                    problems.append(Problem(shown_as, lineno, 1, "", "not valid JSON (expected one object per line)"))
        if problems:
            raise InvalidInput(problems[:MAX_PROBLEMS])
    check = BENCHMARKS[benchmark].check if benchmark else (lambda row: None)
    problems = [Problem(shown_as, lineno, 1, "", why) for lineno, row in numbered
                if (why := check(row) if isinstance(row, dict) else "expected a JSON object")]  # fmt: skip
    if problems:
        raise InvalidInput(problems[:MAX_PROBLEMS])
    return [row for _, row in numbered]


def sample(rows: list[Item], n: int, seed: int) -> list[Item]:
    """`n` rows drawn by `seed`, kept in file order."""
    return [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), n))]
