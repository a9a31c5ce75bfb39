"""The estimates of a plan for this project: model shapes from what is built or on disk, the store's
history of runs, the machine's memory; and the run recorded after each stage, with the estimate's error.
The arithmetic is in planning/estimate.py (pure); this module finds its inputs."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from anvil.backends import machine
from anvil.errors import AnvilError
from anvil.estimates import arithmetic as estimate
from anvil.estimates import concurrency, first_run, history, sizing
from anvil.estimates.arithmetic import GB, Run, Shape
from anvil.estimates.cost import Cost, Work
from anvil.estimates.machines import PROFILES
from anvil.planning.graph import Graph, Node
from anvil.planning.plan import Act, Estimate, Plan
from anvil.planning.record import StageRecord
from anvil.recipe.datasets import Dataset, MixError
from anvil.recipe.load import LoadedRecipe
from anvil.stages import source
from anvil.stages.registry import BY_KIND
from anvil.stages.stage import weights_of
from anvil.state.store import Store

WARN_FRACTION = 0.85  # of the machine's memory: above it, the plan warns; above all of it, apply refuses
SAMPLE_BYTES = 32 << 20  # of a training file read for its rows' length: plenty for a mean, quick on any file


def shapes(loaded: LoadedRecipe, records: Mapping[str, StageRecord], store: Store) -> dict[str, Shape | None]:
    """Each model's shape: its lineage root's (a LoRA round keeps the shape it was trained on)."""
    recipe, found = loaded.recipe, {}
    for name in recipe.models:
        root = recipe.root_of(name)
        if root not in found:
            record = records.get(weights_of(recipe, root))
            built = None
            if record is not None and store.intact(record):
                try:
                    built = source.checkpoint(store.artifact(record.fingerprint), loaded.root)
                except AnvilError:  # a Hub snapshot gone from the cache: fall back to the recipe
                    built = None
            found[root] = sizing.root_shape(recipe.models[root], loaded.root, built)
        found[name] = found[root]
        if (quantized := recipe.models[name].quantize) is not None and (parent := found[root]) is not None:
            found[name] = sizing.quantized_shape(parent, quantized)
    return found


def for_plan(
    plan: Plan, graph: Graph, loaded: LoadedRecipe, records: Mapping[str, StageRecord], store: Store
) -> dict[str, Estimate]:
    model_shapes = shapes(loaded, records, store)
    profile = PROFILES.get(loaded.recipe.machine.profile or "")
    # planned for another machine: its profile, never this machine's history or probe
    runs = [] if profile else history.read(history_file(store))
    here = sizing.machine()
    speed, probed = (profile.speed(), f"{profile.chip} profile") if profile else (None, "machine probe")
    out = {}
    for action in plan.changes:
        node = graph.nodes.get(action.stage)
        if node is None:
            continue
        if action.act is Act.RESTORE:
            out[node.id] = Estimate(0.0, "restore")
            continue
        cost = cost_of(node)
        # a stage that loads another stage's model (a quantize stage: its parent's) is weighed by that one
        weighed = graph.nodes[node.needs[cost.weighs]] if cost.weighs else node
        shape = model_shapes.get(model_of(weighed) or "")
        size = shape.parameters if shape else 0.0
        work = Work(node.settings, shape, training_sequence(node, graph, loaded.root), in_flight(node))
        amount = cost.units(work)
        seconds, basis = estimate.seconds(node.id, node.kind, cost.unit, amount, size, here, runs)
        if seconds is None:
            seconds, basis = first_run.seconds(cost, work, amount, speed or machine.measure()), probed
        out[node.id] = Estimate(seconds, basis, cost.memory(work) if shape else None, amount, cost.evaluation)
    return out


def cost_of(node: Node) -> Cost:
    stage = BY_KIND.get(node.kind)
    return stage.cost if stage is not None else Cost()


def in_flight(node: Node) -> int:
    return getattr(node.options, "concurrency", 1)


def units(node: Node, shape: Shape | None, sequence: float | None) -> float:
    return cost_of(node).units(Work(node.settings, shape, sequence, in_flight(node)))


def training_sequence(node: Node, graph: Graph, root: Path) -> float | None:
    """A training round's tokens per sequence (None for any other stage)."""
    return sequence_tokens(node, graph, root) if cost_of(node).reads_rows else None


def sequence_tokens(node: Node, graph: Graph, root: Path) -> float | None:
    """A training round's tokens per sequence, from the rows its dataset mixes (None: not readable now;
    validate and the dataset stage say why)."""
    dataset = graph.nodes.get(node.needs.get("dataset", ""))
    if dataset is None or not isinstance(dataset.config, Dataset):
        return None
    try:
        lengths, rows = zip(*(row_lengths(root / source.path) for source in dataset.config.sources), strict=True)
        taken = dataset.config.row_counts(list(rows))
    except (OSError, MixError):
        return None
    return estimate.sequence_tokens(list(zip(lengths, taken, strict=True)), node.settings["train"]["max_seq_length"])


def row_lengths(path: Path) -> tuple[list[int], int]:
    """The length in bytes of each row of a JSONL file and how many rows it holds; of a file over
    SAMPLE_BYTES, its first rows, and the count those predict (an estimate need not read 50 GB)."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        head = file.read(SAMPLE_BYTES)
    lines = head.split(b"\n")
    if size > len(head):
        lines = lines[:-1]  # cut by the sample's end
    lengths = [len(line) + 1 for line in lines if line.strip()]
    rows = len(lengths) if size <= len(head) else round(len(lengths) * size / max(sum(lengths), 1))
    return lengths, rows


def model_of(node: Node) -> str | None:
    return node.model or node.settings.get("model")


def with_concurrency(
    graph: Graph, loaded: LoadedRecipe, records: Mapping[str, StageRecord], store: Store
) -> tuple[Graph, dict[str, str]]:
    """The graph with every `concurrency = "auto"` chosen for its stage's model on the planned machine, and
    why, by stage."""
    auto = [n for n in graph.nodes.values() if getattr(n.options, "concurrency", 1) == "auto"]
    if not auto:
        return graph, {}
    model_shapes, (limit, where) = shapes(loaded, records, store), memory_limit(loaded)
    found: dict[str, tuple[int, str] | None] = {}
    for node in auto:
        shape = model_shapes.get(model_of(node) or "")

        def peak(in_flight: int, node: Node = node, shape: Shape | None = shape) -> float | None:
            return cost_of(node).memory(Work(node.settings, shape, None, in_flight)) if shape else None

        found[node.id] = (
            (1, concurrency.SAMPLED)
            if getattr(node.options, "sampled", False)
            else concurrency.chosen(peak, limit, WARN_FRACTION)
        )
    by_model: dict[str, tuple[int, str]] = {}
    for node in auto:  # a stage asking another stage's server (serving) takes what that model's stages chose
        if (choice := found[node.id]) is not None and not getattr(node.options, "sampled", False):
            by_model[model_of(node) or ""] = min(by_model.get(model_of(node) or "", choice), choice)
    nodes, why = dict(graph.nodes), {}
    for node in auto:
        count, reason = (
            found[node.id] or by_model.get(model_of(node) or "") or (1, "1 at once: its memory is not known yet")
        )
        assert node.options is not None  # an auto node has its options
        nodes[node.id] = replace(node, options=node.options.model_copy(update={"concurrency": count}))
        why[node.id] = f"{reason} ({where})"
    return replace(graph, nodes=nodes), why


def memory_limit(loaded: LoadedRecipe) -> tuple[float, str]:
    machine = loaded.recipe.machine
    profile = PROFILES.get(machine.profile or "")
    memory_gb = machine.memory_gb or (max(profile.memory_gb) if profile else None)
    if memory_gb is not None:
        named = machine.name or (f"the {profile.chip} ({memory_gb:g} GB)" if profile else "the recipe's [machine]")
        return memory_gb * GB, named
    return sizing.total_memory(), "this machine"


def too_big(estimates: Mapping[str, Estimate], loaded: LoadedRecipe) -> tuple[list[str], list[str]]:
    """(stages that cannot fit: apply refuses them, stages close to the limit: the plan warns), as lines."""
    limit, where = memory_limit(loaded)
    refuse, warn = [], []
    for stage, e in estimates.items():
        if e.memory_bytes is None:
            continue
        line = f"{stage} needs about {size(e.memory_bytes)} at its peak; {where} has {size(limit)}"
        if e.memory_bytes > limit:
            refuse.append(line)
        elif e.memory_bytes > WARN_FRACTION * limit:
            warn.append(line)
    return refuse, warn


def size(nbytes: float) -> str:
    return f"{nbytes / GB:.1f} GB" if nbytes >= GB else f"{nbytes / 1e6:.0f} MB"


def history_file(store: Store) -> Path:
    return store.root / "history.jsonl"


def recorded(
    store: Store,
    graph: Graph,
    root: Path,
    estimates: Mapping[str, Estimate],
    shapes_of: dict[str, Shape | None],
    run: Callable[..., Any],
) -> Callable[..., Any]:
    """`run` (the executor's stage function), remembering in the store's history how long each stage took
    next to what the plan estimated."""

    def timed(action, workdir, inputs):
        started = time.monotonic()
        result = run(action, workdir, inputs)
        node = graph.nodes[action.stage]
        shape = shapes_of.get(model_of(node) or "")
        # a planned restore that had to build after all (a rejected download) had no estimate of building
        expected = estimates.get(action.stage) if action.act is not Act.RESTORE else None
        # the plan's own count (the files as planned)
        planned = expected.units if expected is not None else None
        work = planned if planned is not None else units(node, shape, training_sequence(node, graph, root))
        history.append(
            history_file(store),
            Run(
                stage=action.stage,
                kind=action.kind,
                machine=sizing.machine(),
                units=work,
                parameters=shape.parameters if shape else 0.0,
                seconds=round(time.monotonic() - started, 3),
                estimate=None if expected is None or expected.seconds is None else round(expected.seconds, 3),
                unit=cost_of(node).unit,
            ),
        )
        return result

    return timed
