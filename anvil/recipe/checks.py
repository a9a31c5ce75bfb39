"""Checks across the recipe that one field cannot make alone: names, references, cycles, files, rows."""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from anvil.backends import harness
from anvil.errors import InvalidInput, Problem
from anvil.knowledge.data import metric_name, read, shots_missing, sources
from anvil.knowledge.registry import BENCHMARKS
from anvil.methods.registry import METHODS
from anvil.recipe import reward_checks
from anvil.recipe.base import NAME_PATTERN
from anvil.recipe.datasets import MixError
from anvil.recipe.evaluation import Knowledge
from anvil.recipe.files import not_a_file
from anvil.recipe.metrics import gate_metrics
from anvil.recipe.models import Lora, Recipe, Synthetic
from anvil.recipe.suite import SuiteFolderError, load_suite

# (key path, message) pairs; the loader turns them into located problems.
Finding = tuple[tuple[str | int, ...], str]


def _defined(names, kind: str, name: str) -> str:
    known = ", ".join(sorted(names)) or "none"
    return f"{kind} {name!r} is not defined (expected one of: {known})"


def check_references(recipe: Recipe) -> Iterator[Finding]:
    for table, names in (("models", recipe.models), ("datasets", recipe.datasets)):
        for name in names:
            if not re.fullmatch(NAME_PATTERN, name):  # not match: its `$` also matches before a final newline
                yield (
                    (table, name),
                    f"name {name!r} is not allowed (expected letters, digits, _ or -, starting with a letter)",
                )
    for name, model in recipe.models.items():
        if model.parent is not None and model.parent not in recipe.models:
            yield ("models", name, "parent"), _defined(recipe.models, "model", model.parent)
        elif model.quantize is not None and model.parent and recipe.models[model.parent].quantize is not None:
            yield (
                ("models", name, "parent"),
                (
                    f"{model.parent!r} is already quantized: quantize its parent "
                    f"{recipe.models[model.parent].parent!r} instead"
                ),
            )
        elif model.trains and model.parent is not None and recipe.models[model.parent].quantize is not None:
            yield (
                ("models", name, "parent"),
                (
                    f"{model.parent!r} is a quantized node: a round trains on full-"
                    f"precision weights (train on {recipe.models[model.parent].parent!r}"
                    ", then quantize)"
                ),
            )
        if model.dataset is not None and model.dataset not in recipe.datasets:
            yield ("models", name, "dataset"), _defined(recipe.datasets, "dataset", model.dataset)
        elif model.dataset is not None:
            held, wanted = (
                recipe.datasets[model.dataset].format,
                METHODS[model.method].ROWS,
            )
            if held != wanted:
                yield (
                    ("models", name, "dataset"),
                    (
                        f"dataset {model.dataset!r} holds {held} rows, but method = "
                        f"{model.method!r} trains on {wanted} rows (expected a dataset "
                        f"with format = {wanted!r})"
                    ),
                )

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
        if not model.trains or not (root.source or "").startswith("synthetic:"):
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


def _unknown_metric(metric: str, metrics: dict, whose: str) -> str:
    close = difflib.get_close_matches(metric, metrics, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(list(metrics)[:6]) or 'none'}"
    return f"{metric!r} is not a metric of {whose} ({hint})"


def check_gates(recipe: Recipe, suites: dict[str, list]) -> Iterator[Finding]:
    """Every gate names a metric its model's results will have, with bounds inside the metric's range; every
    sweep selects on a metric its variants' results will have."""
    for name, model in recipe.models.items():
        if model.select is not None and model.select.metric not in (metrics := gate_metrics(recipe, suites, name)):
            yield (
                ("models", name, "select", "metric"),
                _unknown_metric(model.select.metric, metrics, f"{name}'s variants' results"),
            )
        elif (
            model.select is not None
            and model.select.rule == "simplest_within_noise"
            and (model.select.metric.startswith("knowledge."))
        ):
            yield (
                ("models", name, "select", "rule"),
                (
                    "simplest_within_noise compares suite scores test by test: "
                    "select on a suite metric, or use rule = 'best'"
                ),
            )
    for i, gate in enumerate(recipe.gates):
        metrics = gate_metrics(recipe, suites, gate.model)
        if gate.metric not in metrics:
            yield ("gates", i, "metric"), _unknown_metric(gate.metric, metrics, f"{gate.model}'s results")
            continue
        low, high = metrics[gate.metric]
        for bound in ("min", "max"):
            value = getattr(gate, bound)
            if value is not None and not low <= value <= high:
                yield ("gates", i, bound), f"{value:g} is outside {gate.metric}'s range (expected {low:g} to {high:g})"


def check_categories(recipe: Recipe, suites: dict[str, list]) -> Iterator[Finding]:
    """A dataset's category notes name categories of its sources, and what they address is a suite
    category or a test of the recipe's suites."""
    targets = {name for tests in suites.values() for test in tests for name in (test.category, test.id)}
    for name, dataset in recipe.datasets.items():
        used = list(dict.fromkeys(source.category for source in dataset.sources))
        for category, notes in dataset.categories.items():
            where = ("datasets", name, "categories", category)
            if category not in used:
                close = difflib.get_close_matches(category, used, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(used)}"
                yield where, f"{category!r} is not a category of this dataset's sources ({hint})"
            for i, target in enumerate(notes.addresses):
                if target not in targets:
                    close = difflib.get_close_matches(target, targets, n=1, cutoff=0.6)
                    known = ", ".join(sorted(targets)[:8]) or "none: the recipe has no suites"
                    hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {known}"
                    yield (*where, "addresses", i), f"{target!r} is no suite category or test ({hint})"


def check_knowledge(
    recipe: Recipe, root: Path, check_rows: Callable[[Path, str], tuple[int, list[Problem]]]
) -> Iterator[Finding | Problem]:
    """Each benchmark's local rows and exemplars are there and well formed, with enough rows for `n`;
    no two benchmarks go by one name."""
    names: dict[str, int] = {}
    for i, spec in enumerate(recipe.eval.knowledge if recipe.eval else []):
        name = metric_name(spec)
        if name in names:
            yield ("eval", "knowledge", i), f"{name} is also eval.knowledge[{names[name]}] (expected each once)"
        names[name] = i
        if spec.task is not None:
            yield from _check_task(spec, i, root)
            continue
        assert spec.benchmark is not None
        if spec.chat == "system_header" and BENCHMARKS[spec.benchmark].header is None:
            yield (
                ("eval", "knowledge", i, "chat"),
                (f'{spec.benchmark} has no header to put in a system turn (expected chat = "one_turn")'),
            )
        data, fewshot = sources(spec.benchmark, spec.data, spec.fewshot)
        files = [("data", data, spec.benchmark), ("fewshot", fewshot, f"{spec.benchmark}:fewshot")]
        for field, where, kind in files:
            if where is None or not where.startswith("path:"):
                continue  # a Hub file is checked when it is downloaded
            file, loc = where.removeprefix("path:"), ("eval", "knowledge", i, field)
            if what := not_a_file(root / file):
                yield loc, f"{file} {what} (expected a JSONL file of rows)"
                continue
            count, problems = check_rows(root / file, kind)
            yield from problems
            if field == "data" and not problems and spec.n > count:
                yield (
                    ("eval", "knowledge", i, "n"),
                    f"asks for {spec.n} items but {file} has {count} (expected at most {count})",
                )
            if field == "fewshot" and not problems and (why := _shots_missing(spec, data, root, file)):
                yield loc, f"{file} {why} (expected enough exemplars, or no fewshot file)"


def _check_task(spec: Knowledge, i: int, root: Path) -> Iterator[Finding]:
    """An lm-eval task: lm-eval installed, its files local, the task one lm-eval reads and runs offline as a
    generation task, its metric and filter there, enough documents for `n`."""
    assert spec.task is not None
    where = ("eval", "knowledge", i)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", metric_name(spec)):
        yield (
            (*where, "name"),
            f"{spec.task} gives the name {metric_name(spec)!r} (expected a `name` of letters, digits, _ or -)",
        )
        return
    if harness.version() is None:
        yield (*where, "task"), f"{spec.task} is an lm-eval task, and lm-eval is not installed ({harness.EXTRA})"
        return
    files: dict[str, Path | None] = {}
    for field in ("data", "fewshot"):
        setting = getattr(spec, field)
        if setting is not None and not setting.startswith("path:"):
            yield (*where, field), f"{setting} is not a local file (expected path:FILE: a task runs offline)"
            return
        file = setting.removeprefix("path:") if setting else None
        if file is not None and (what := not_a_file(root / file)):
            yield (*where, field), f"{file} {what} (expected a file of the task's rows)"
            return
        files[field] = root / file if file else None
    try:
        task, built = harness.loaded(
            spec.task,
            root,
            data=files["data"],
            fewshot=files["fewshot"],
            metric=spec.metric,
            max_tokens=spec.max_tokens,
        )
        if spec.filter is not None and spec.filter not in task.filters:
            yield (
                (*where, "filter"),
                f"{spec.task} has no filter {spec.filter!r} (expected one of: {', '.join(task.filters)})",
            )
            return
        count = harness.size(built)
    except harness.TaskError as e:
        yield (*where, "task"), f"{spec.task} {e}"
        return
    if spec.n > count:
        yield (*where, "n"), f"asks for {spec.n} items but {spec.task} has {count} (expected at most {count})"


def _shots_missing(spec: Knowledge, data: str | None, root: Path, shots_file: str) -> str | None:
    """The few-shot file against the protocol's count; exemplars by subject against the subjects of the items,
    where their rows are local (the only case that reads them)."""
    assert spec.benchmark is not None
    shots = read(root / shots_file, spec.benchmark, shots_file, shots=True)
    items: list = []
    file = data.removeprefix("path:") if data and data.startswith("path:") else None
    if BENCHMARKS[spec.benchmark].shots_by and file and (root / file).is_file():
        with contextlib.suppress(InvalidInput):  # its problems are reported with the data file
            items = read(root / file, spec.benchmark, file)
    return shots_missing(spec.benchmark, items, shots)


def check_files(
    recipe: Recipe, root: Path, check_rows: Callable[[Path, str], tuple[int, list[Problem]]], suites: dict[str, list]
) -> Iterator[Finding | Problem]:
    """Files the recipe reads exist, and every dataset can be mixed from what they hold.
    `check_rows(path, kind)` validates a file's rows and returns how many are valid and the problems found; the
    suites read are put in `suites`, by path as the recipe writes it."""
    for name, model in recipe.models.items():
        if model.source and model.source.startswith("path:"):
            folder = model.source.removeprefix("path:")
            if not (root / folder).exists():
                yield ("models", name, "source"), f"{folder} does not exist (expected a checkpoint folder)"
            elif not (root / folder / "config.json").is_file():
                yield ("models", name, "source"), f"{folder} is not a checkpoint folder (expected one with config.json)"
    names: dict[str, int] = {}
    for i, suite in enumerate(recipe.eval.suites if recipe.eval else []):
        if (name := Path(suite).name) in names:
            other = f"eval.suites[{names[name]}]"
            yield ("eval", "suites", i), f"suite name {name!r} is also {other}'s (expected distinct folder names)"
            continue
        names[name] = i
        try:
            tests = suites[suite] = load_suite(root / suite, suite)
        except SuiteFolderError as e:
            yield ("eval", "suites", i), str(e)
            continue
        except InvalidInput as e:
            yield from e.problems
            continue
        judges = (recipe.eval.judge.judges or [recipe.eval.judge]) if recipe.eval is not None else []
        if any(j.kind == "rules" for j in judges):
            for test in tests:
                if not test.checks:
                    yield ("eval", "suites", i), f"{suite}/{test.id}.toml has no checks, which the rules judge needs"
    yield from reward_checks.check_fields(recipe, root)
    yield from check_knowledge(recipe, root, check_rows)
    if recipe.eval is None or len(suites) == len(recipe.eval.suites):  # names can be checked against them all
        yield from reward_checks.check_judges(recipe, suites)
        yield from check_gates(recipe, suites)
        yield from check_categories(recipe, suites)
    for name, dataset in recipe.datasets.items():
        available: dict[int, int] = {}
        for i, source in enumerate(dataset.sources):
            path, where = root / source.path, ("datasets", name, "sources", i, "path")
            if what := not_a_file(path):
                yield where, f"{source.path} {what} (expected a {dataset.format} JSONL file)"
                continue
            valid, problems = check_rows(path, dataset.format)
            yield from problems
            if not problems and not valid:
                yield where, f"{source.path} has no rows (expected at least one {dataset.format} record)"
            elif not problems:
                available[i] = valid
        if len(available) < len(dataset.sources):
            continue
        try:
            dataset.row_counts([available[i] for i in range(len(dataset.sources))])
        except MixError as e:
            field: tuple[str | int, ...] = ()
            if e.source is not None:
                field = ("sources", e.source, "count" if dataset.sources[e.source].count else "weight")
            yield ("datasets", name, *field), str(e)
