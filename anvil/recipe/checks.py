"""Checks across the recipe that one field cannot make alone: names, references, cycles, files, rows."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from anvil.errors import InvalidInput, Problem
from anvil.recipe.models import NAME_PATTERN, Lora, MixError, Recipe, Synthetic
from anvil.recipe.suite import load_suite

# (key path, message) pairs; the loader turns them into located problems.
Finding = tuple[tuple[str | int, ...], str]


def _defined(names, kind: str, name: str) -> str:
    known = ", ".join(sorted(names)) or "none"
    return f"{kind} {name!r} is not defined (expected one of: {known})"


def check_references(recipe: Recipe) -> Iterator[Finding]:
    for table, names in (("models", recipe.models), ("datasets", recipe.datasets)):
        for name in names:
            if not re.match(NAME_PATTERN, name):
                yield (
                    (table, name),
                    f"name {name!r} is not allowed (expected letters, digits, _ or -, starting with a letter)",
                )
    for name, model in recipe.models.items():
        if model.parent is not None and model.parent not in recipe.models:
            yield ("models", name, "parent"), _defined(recipe.models, "model", model.parent)
        if model.dataset is not None and model.dataset not in recipe.datasets:
            yield ("models", name, "dataset"), _defined(recipe.datasets, "dataset", model.dataset)
    cycles = list(_check_cycles(recipe))
    yield from cycles
    if not cycles:
        yield from _check_layers(recipe)
    if recipe.serve and recipe.serve.model is not None and recipe.serve.model not in recipe.models:
        yield ("serve", "model"), _defined(recipe.models, "model", recipe.serve.model)
    if recipe.eval:
        for i, name in enumerate(recipe.eval.compare):
            if name not in recipe.models:
                yield ("eval", "compare", i), _defined(recipe.models, "model", name)
    compared = recipe.eval.compare if recipe.eval else []
    if recipe.eval and recipe.eval.suites and not compared:
        yield ("eval", "compare"), "lists no model to evaluate (expected model names, e.g. ['base', 'v1', 'v2'])"
    for i, gate in enumerate(recipe.gates):
        if gate.model not in recipe.models:
            yield ("gates", i, "model"), _defined(recipe.models, "model", gate.model)
        elif gate.model not in compared:
            yield ("gates", i, "model"), f"{gate.model!r} is not evaluated (expected it in eval.compare)"


def _check_layers(recipe: Recipe) -> Iterator[Finding]:
    """A round cannot adapt more layers than its lineage's root has (known up front for synthetic roots)."""
    for name, model in recipe.models.items():
        root = recipe.models[recipe.root_of(name)]
        if model.parent is None or not (root.source or "").startswith("synthetic:"):
            continue
        layers = (root.synthetic or Synthetic()).num_layers
        wanted = (model.lora or Lora()).last_layers
        if wanted > layers:
            yield (
                ("models", name, "lora", "last_layers"),
                f"{wanted} layers requested but the model has {layers} (expected at most {layers})",
            )


def _check_cycles(recipe: Recipe) -> Iterator[Finding]:
    reported: set[str] = set()
    for start in recipe.models:
        chain = recipe.lineage(start)
        parent = recipe.models[chain[-1]].parent
        if parent in chain:  # the walk stopped because the name repeats
            cycle = chain[chain.index(parent) :]
            if not reported & set(cycle):
                reported.update(cycle)
                shown = " -> ".join(cycle + [parent])
                yield (
                    ("models", cycle[0], "parent"),
                    f"lineage cycle {shown} (expected a tree rooted in a model with a source)",
                )


def check_files(
    recipe: Recipe, root: Path, check_rows: Callable[[Path], tuple[int, list[Problem]]], suites: dict[str, list]
) -> Iterator[Finding | Problem]:
    """Files the recipe reads exist, and every dataset can be mixed from what they hold.
    `check_rows` validates a file's rows and returns how many are valid and the problems found; the
    suites read are put in `suites`, by path as the recipe writes it."""
    for name, model in recipe.models.items():
        if model.source and model.source.startswith("path:") and not (root / model.source[5:]).exists():
            yield ("models", name, "source"), f"{model.source[5:]} does not exist (expected a checkpoint folder)"
    for i, suite in enumerate(recipe.eval.suites if recipe.eval else []):
        try:
            tests = suites[suite] = load_suite(root / suite, suite)
        except InvalidInput as e:
            yield from e.problems
            continue
        if recipe.eval.judge.kind == "rules":
            for test in tests:
                if not test.checks:
                    yield ("eval", "suites", i), f"{suite}/{test.id}.toml has no checks, which the rules judge needs"
    for name, dataset in recipe.datasets.items():
        available: dict[int, int] = {}
        for i, source in enumerate(dataset.sources):
            path = root / source.path
            if not path.is_file():
                yield (
                    ("datasets", name, "sources", i, "path"),
                    f"{source.path} does not exist (expected a chat JSONL file)",
                )
                continue
            valid, problems = check_rows(path)
            yield from problems
            if not problems:
                available[i] = valid
        if len(available) < len(dataset.sources):
            continue
        try:
            dataset.row_counts([available[i] for i in range(len(dataset.sources))])
        except MixError as e:
            source = dataset.sources[e.source] if e.source is not None else None
            field = () if source is None else ("sources", e.source, "count" if source.count else "weight")
            yield ("datasets", name) + field, str(e)
