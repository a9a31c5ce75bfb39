"""dataset: mix JSONL sources (chat records, or preference pairs) by category count or weight, shuffle by
seed, split train/valid.

Writes `train.jsonl` and `valid.jsonl` that mlx-lm(-lora) reads as they are, and `manifest.json`
with per-category counts for the report."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

from anvil.estimates.cost import Cost
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import StageRecord
from anvil.recipe.datasets import Dataset
from anvil.recipe.models import Recipe
from anvil.recipe.rows import load_rows
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View
from anvil.stages.stage import Recorded, Result, Stage, StageRun, Suites, artifact_json, read_figures

CODE_VERSION = 3
MANIFEST = "manifest.json"


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    return [
        Node(
            id=stage_id("dataset", name),
            kind="dataset",
            config=dataset,
            files=tuple(dict.fromkeys(s.path for s in dataset.sources)),
            code_version=CODE_VERSION,
        )
        for name, dataset in recipe.datasets.items()
    ]


def split(rows_by_category: dict[str, list[str]], valid_fraction: float, rng: random.Random):
    """Stratified split: each category gives round(n * fraction) rows to valid, so every category is
    seen in validation; at least one valid row overall when the fraction is above zero.
    Returns (train, valid) as lists of (row, category) and the per-category counts."""
    n_valid = {c: round(len(rows) * valid_fraction) for c, rows in rows_by_category.items()}
    if valid_fraction > 0 and not any(n_valid.values()):
        largest = max(rows_by_category, key=lambda c: len(rows_by_category[c]))
        n_valid[largest] = 1 if len(rows_by_category[largest]) > 1 else 0
    train: list[tuple[str, str]] = []
    valid: list[tuple[str, str]] = []
    counts: dict[str, dict[str, int]] = {}
    for category, rows in rows_by_category.items():
        tagged = [(row, category) for row in rows]
        rng.shuffle(tagged)
        k = n_valid[category]
        valid += tagged[:k]
        train += tagged[k:]
        counts[category] = {"rows": len(rows), "train": len(rows) - k, "valid": k}
    rng.shuffle(train)
    rng.shuffle(valid)
    return train, valid, counts


def sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    return [sorted_keys(item) for item in value] if isinstance(value, list) else value


def served_tool_order(row: str) -> str:
    """A row whose tool schemas have their keys sorted at every depth, as mlx-vlm renders the tools of every
    request (prompt_utils._sort_tool_schema_keys, for its prefix cache): trained in the order given, a model
    would be served a system prompt it never saw. Rows without tools are kept byte for byte."""
    parsed = json.loads(row)
    if not parsed.get("tools"):
        return row
    return json.dumps(parsed | {"tools": sorted_keys(parsed["tools"])}, ensure_ascii=False)


class DatasetFigures(Recorded):
    rows: int
    train: int
    valid: int
    categories: dict[str, int]  # rows per category


def run(ctx: StageRun[Dataset]) -> Result:
    dataset = ctx.config
    rows = [load_rows(ctx.root / s.path, s.path, dataset.format) for s in dataset.sources]
    counts = dataset.row_counts([len(r) for r in rows])
    rng = random.Random(dataset.seed)
    by_category: dict[str, list[str]] = defaultdict(list)
    sources = []
    for source, available, n in zip(dataset.sources, rows, counts, strict=True):
        taken = available if n == len(available) else rng.sample(available, n)
        by_category[source.category] += taken
        sources.append({"path": source.path, "category": source.category, "available": len(available), "taken": n})
        ctx.progress(len(sources) / (len(dataset.sources) + 1), f"read {source.path}")
    train, valid, categories = split(dict(by_category), dataset.valid_fraction, rng)
    for name, tagged in (("train.jsonl", train), ("valid.jsonl", valid)):
        (ctx.out / name).write_text("".join(served_tool_order(row) + "\n" for row, _ in tagged), encoding="utf-8")
    manifest = {
        "rows": len(train) + len(valid),
        "train": len(train),
        "valid": len(valid),
        "categories": categories,
        "sources": sources,
        "seed": dataset.seed,
        "valid_categories": [category for _, category in valid],  # row by row, for held-out samples
    }
    (ctx.out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return Result.of(
        DatasetFigures(
            rows=manifest["rows"],
            train=len(train),
            valid=len(valid),
            categories={c: v["rows"] for c, v in categories.items()},
        )
    )


def manifest(artifact: Path) -> dict[str, Any]:
    return artifact_json(artifact, MANIFEST)


def validation_rows(artifact: Path) -> list[tuple[dict, str]]:
    """The held-out conversations of a built dataset, each with its category."""
    rows = [json.loads(line) for line in (artifact / "valid.jsonl").read_text().splitlines()]
    return list(zip(rows, manifest(artifact)["valid_categories"], strict=True))


def mix(config: ReportConfig, view: View, name: str) -> dict[str, Any]:
    """A dataset as a round's section of the page shows it: its rows by category, each with its note."""
    notes, sid = config.datasets.get(name), stage_id("dataset", name)
    found = view.read(sid, manifest) or {}
    categories = []
    for category, counts in found.get("categories", {}).items():
        note = notes.categories.get(category) if notes else None
        categories.append(
            {
                "name": category,
                "rows": counts["rows"],
                "train": counts["train"],
                "valid": counts["valid"],
                "description": note.description if note else None,
                "addresses": (note.addresses or [category]) if note else [category],
            }
        )
    return {
        "name": name,
        "description": notes.description if notes else None,
        "rows": found.get("rows"),
        "state": view.states.get(sid, "pending"),
        "categories": categories,
        "from": sid,
    }


def summary(record: StageRecord) -> str:
    m = read_figures(DatasetFigures, record)
    count = len(m.categories)
    return f"{m.rows} rows in {count} categor{'y' if count == 1 else 'ies'} ({m.valid} held out)"


COST = Cost(start_s=0.01)


STAGE = Stage(
    kind="dataset", code_version=CODE_VERSION, nodes=nodes, run=run, summary=summary, cost=COST, figures=DatasetFigures
)
