"""A benchmark's rows: where they come from (a local JSONL file, or a file of a Hugging Face dataset repo,
which backends/hub.py downloads), how they are read and checked row by row, and which `n` of them a run
uses (the same for every model: drawn by seed, then in file order, so runs of different models pair item
by item)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Protocol

from anvil.errors import InvalidInput, Problem
from anvil.knowledge.protocol import Item
from anvil.knowledge.registry import BENCHMARKS

MAX_PROBLEMS = 20


class KnowledgeSpec(Protocol):  # a recipe's `[[eval.knowledge]]` entry (recipe/evaluation.py's Knowledge)
    @property
    def benchmark(self) -> str | None: ...
    @property
    def task(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def data(self) -> str | None: ...
    @property
    def fewshot(self) -> str | None: ...
    @property
    def max_tokens(self) -> int | None: ...
    @property
    def chat(self) -> str: ...


def sources(benchmark: str, data: str | None, fewshot: str | None) -> tuple[str, str | None]:
    """Where a benchmark's rows and exemplars come from: the recipe's, or without `data` the Hub's test
    split and, for MMLU-Pro, its validation split."""
    spec = BENCHMARKS[benchmark]
    return data or spec.hub_data, fewshot or (spec.hub_fewshot if data is None else None)


def metric_name(spec: KnowledgeSpec) -> str:
    """The name a benchmark's scores go by: the benchmark, marked for every departure from its published
    protocol so that a score is never compared with a published one by mistake: `_0shot` without the
    exemplars it needs (MMLU-Pro's come from a split that does not ship with Anvil), `_customshots` with
    exemplars other than the ones it fixes, `_maxN` with a generation budget of N tokens other than its
    own, `_system` with its header in a system turn (lm-eval's chat form). A task and `qa` go by the recipe's
    `name`, else the task's name (a file's stem) or `qa`, marked the same way: a task's protocol is its file."""
    if spec.task is not None or spec.benchmark == "qa":
        task = spec.task or ""
        name = spec.name or (Path(task).stem if task.endswith((".yaml", ".yml")) else task) or "qa"
        if spec.fewshot:
            name += "_customshots"
        if spec.max_tokens is not None and (spec.task is not None or spec.max_tokens != BENCHMARKS["qa"].max_tokens):
            name += f"_max{spec.max_tokens}"
        return name + ("_system" if spec.chat == "system_header" else "")
    assert spec.benchmark is not None
    bench, exemplars = BENCHMARKS[spec.benchmark], sources(spec.benchmark, spec.data, spec.fewshot)[1]
    name = spec.benchmark
    if not bench.default_shots and not exemplars:
        name += "_0shot"
    elif spec.fewshot and spec.fewshot != bench.hub_fewshot:  # the user's exemplars, not the published ones
        name += "_customshots"
    if spec.max_tokens is not None and spec.max_tokens != bench.max_tokens:
        name += f"_max{spec.max_tokens}"
    return name + ("_system" if spec.chat == "system_header" else "")


def read(path: Path, benchmark: str | None, shown_as: str, shots: bool = False) -> list[Item]:
    """Every row, checked for what the benchmark needs of an item, or with `shots` of a few-shot exemplar
    (no benchmark: any JSON object); items must not share a key, or their deltas could not pair. InvalidInput
    names each bad row's line."""
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
    spec = BENCHMARKS[benchmark] if benchmark else None
    check = (spec.shot_check if shots else spec.check) if spec else (lambda row: None)
    problems = [
        Problem(shown_as, lineno, 1, "", why)
        for lineno, row in numbered
        if (why := check(row) if isinstance(row, dict) else "expected a JSON object")
    ]
    if spec and not shots and not problems:
        first: dict[str, int] = {}
        for lineno, row in numbered:
            if (seen := first.setdefault(spec.key(row), lineno)) != lineno:
                problems.append(
                    Problem(
                        shown_as,
                        lineno,
                        1,
                        "",
                        f"repeats the item of line {seen} (expected each item once: models are compared item by item)",
                    )
                )
    if problems:
        raise InvalidInput(problems[:MAX_PROBLEMS])
    return [row for _, row in numbered]


def shots_missing(benchmark: str, items: list[Item], shots: list[Item]) -> str | None:
    """Why a few-shot file cannot give every item the protocol's exemplars (lm-eval stops with an error
    then too): fewer than it uses, or, for exemplars by subject, a subject of the items with fewer."""
    spec = BENCHMARKS[benchmark]
    needed, by = spec.shots_needed, spec.shots_by
    if by is None:
        return None if len(shots) >= needed else f"has {len(shots)} exemplars; the protocol uses {needed}"
    counts = Counter(str(s.get(by)) for s in shots)
    short = sorted({str(i[by]) for i in items if counts[str(i[by])] < needed})
    if not short:
        return None
    return (
        f"has fewer than {needed} exemplars for {len(short)} subject(s) of the items "
        f"({', '.join(short[:4])}{', ...' if len(short) > 4 else ''}); the protocol uses {needed} of the "
        "item's subject"
    )


def sample(rows: list[Item], n: int, seed: int) -> list[Item]:
    """`n` rows drawn by `seed`, kept in file order."""
    return [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), n))]
