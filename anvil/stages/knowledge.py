"""knowledge: knowledge-preservation benchmarks (GSM8K-CoT, MMLU-Pro) of an evaluated model, run as
lm-evaluation-harness runs them, through the model's own server (the serving path), greedy.

The same `n` items for every model (drawn by seed), each item's prompt, answer, extraction and grade
kept in `results.json`, and deltas against base and parent that are paired item by item: McNemar's
exact test and a 95% interval (evaluation/stats.py). Finished items are kept in the stage's scratch
folder: an interrupted run generates only what is missing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from anvil.backends import harness, hub
from anvil.backends.server import chat_until
from anvil.errors import AnvilError
from anvil.estimates import arithmetic, first_run
from anvil.estimates.cost import Cost
from anvil.evaluation.graded import Graded, headline_first, paired, scores_of
from anvil.evaluation.parallel import in_order
from anvil.evaluation.results import BenchmarkScores, KnowledgeResults
from anvil.knowledge import data as benchmark_data
from anvil.knowledge.protocol import truncate
from anvil.knowledge.registry import BENCHMARKS
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.evaluation import Knowledge
from anvil.recipe.models import Recipe
from anvil.recipe.serving import KvCache, Serve
from anvil.stages import transcripts
from anvil.stages.report.charts import bars, drawn
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View
from anvil.stages.stage import (
    Parallel,
    Recorded,
    Result,
    Stage,
    StageRun,
    Suites,
    Throughput,
    read_figures,
    throughput,
    weights_of,
)
from anvil.state.atomic import write_json

CODE_VERSION = 5  # 5: lm-eval tasks; answers kept by prompt
RESULTS = "results.json"


class KnowledgeConfig(Strict):
    benchmarks: list[Knowledge]
    kv_cache: KvCache
    alpha: float = 0.05
    lm_eval: str | None = None  # lm-eval's version, when a benchmark is one of its tasks


def files_of(spec: Knowledge) -> list[str]:
    """The local files a benchmark reads: its rows and exemplars (Hub files are pinned by their repo's cache
    instead); a task file's whole folder, with what it includes, imports and reads (the file alone when it sits
    in the recipe's own folder); a task lm-eval ships is pinned by lm-eval's version."""
    settings = (
        [spec.data, spec.fewshot]
        if spec.benchmark is None
        else list(benchmark_data.sources(spec.benchmark, spec.data, spec.fewshot))
    )
    local = [w.removeprefix("path:") for w in settings if w is not None and w.startswith("path:")]
    task_files = harness.fingerprinted(spec.task) if spec.task else None
    return local + ([task_files] if task_files else [])


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    settings = recipe.eval
    if settings is None or not settings.knowledge:
        return []
    config = KnowledgeConfig(
        benchmarks=settings.knowledge,
        kv_cache=(recipe.serve or Serve()).kv_cache,
        alpha=settings.alpha,
        lm_eval=harness.version() if any(spec.task for spec in settings.knowledge) else None,
    )
    options = Parallel(concurrency=settings.concurrency)
    files = tuple(dict.fromkeys(f for spec in settings.knowledge for f in files_of(spec)))
    out = []
    for name in settings.compare:
        against = {"base": recipe.root_of(name), "parent": recipe.models[name].parent}
        needs = {"model": weights_of(recipe, name)}
        needs |= {role: stage_id("knowledge", m) for role, m in against.items() if m in settings.compare and m != name}
        out.append(
            Node(
                stage_id("knowledge", name),
                "knowledge",
                config,
                needs=needs,
                files=files,
                code_version=CODE_VERSION,
                model=name,
                options=options,
            )
        )
    return out


def items_of(spec: Knowledge, root: Path) -> tuple[list[dict], list[dict]]:
    """The sampled items of a benchmark and its few-shot exemplars."""
    assert spec.benchmark is not None
    data, fewshot = benchmark_data.sources(spec.benchmark, spec.data, spec.fewshot)
    rows = benchmark_data.read(local_file(data, root), spec.benchmark, data)
    if spec.n > len(rows):
        raise AnvilError(f"{data}: {spec.n} items asked, {len(rows)} there (expected n <= {len(rows)})")
    items = benchmark_data.sample(rows, spec.n, spec.seed)
    if not fewshot:
        return items, BENCHMARKS[spec.benchmark].default_shots
    shots = benchmark_data.read(local_file(fewshot, root), spec.benchmark, fewshot, shots=True)
    if (why := benchmark_data.shots_missing(spec.benchmark, items, shots)) is not None:
        raise AnvilError(f"{fewshot} {why} (expected enough exemplars, or no fewshot file)")
    return items, shots


def local_file(data: str, root: Path) -> Path:
    """The local file a `data` setting names (`path:FILE`), or a Hub dataset file downloaded once."""
    scheme, _, where = data.partition(":")
    if scheme == "path":
        return root / where

    return hub.dataset_file(where, data)


def run(ctx: StageRun[KnowledgeConfig]) -> Result:
    config = ctx.config
    tasks = {benchmark_data.metric_name(spec): _task(spec, ctx) for spec in config.benchmarks if spec.task}
    budget = max(
        tasks[benchmark_data.metric_name(s)][0].max_tokens
        if s.task
        else (s.max_tokens or BENCHMARKS[s.benchmark or ""].max_tokens)
        for s in config.benchmarks
    )
    generation = {"tokens": 0, "seconds": 0.0}  # what this run generated (not what an interrupted one did)
    with contextlib.ExitStack() as stack:
        server: list[Any] = []

        def answer(prompts: list[harness.Prompt], what: str) -> list[str]:
            """Each prompt answered greedily until its stop sequences, through the model's server (started for
            the first prompt not answered by an earlier, interrupted run)."""
            names = [hashlib.sha256(json.dumps(p).encode()).hexdigest()[:24] for p in prompts]
            by_name = dict(zip(names, prompts, strict=True))

            def produce(missing: list[str]) -> Iterator[tuple[str, Any]]:
                if not server:
                    server.append(stack.enter_context(transcripts.model_server(ctx, budget, config.kv_cache)))

                def one(name: str) -> dict:
                    turns, max_tokens, stop = by_name[name]
                    text, stopped, chunks = chat_until(server[0], turns, max_tokens, stop)
                    return {"response": text, "stopped": stopped, "tokens": chunks}

                # the longest prompts first: requests sent together then end nearer together
                missing = sorted(missing, key=lambda name: -len(json.dumps(by_name[name][0])))
                started = time.perf_counter()
                for i, (name, value) in enumerate(in_order(one, missing, ctx.concurrency)):
                    ctx.progress(i / len(missing), what)
                    generation["tokens"] += value["tokens"]
                    yield name, value
                generation["seconds"] += time.perf_counter() - started

            done = transcripts.resumable(ctx.scratch, list(dict.fromkeys(names)), produce)
            return [truncate(done[name]["response"], prompt[2]) for name, prompt in zip(names, prompts, strict=True)]

        graded = {
            benchmark_data.metric_name(spec): _run_task(spec, tasks[benchmark_data.metric_name(spec)], answer)
            if spec.task
            else _run_protocol(spec, ctx.root, answer)
            for spec in config.benchmarks
        }
    others = {role: results_of(ctx.inputs[role]) for role in ("base", "parent") if role in ctx.inputs}
    results = {}
    for spec in config.benchmarks:
        name = benchmark_data.metric_name(spec)
        found = graded[name]
        against = {
            f"delta_vs_{role}": paired(found, other.benchmarks.get(name), config.alpha)
            for role, other in others.items()
        }
        results[name] = BenchmarkScores.model_validate(scores_of(found, spec) | against | {"items": found.items})
    write_json(ctx.out / RESULTS, KnowledgeResults(benchmarks=results).model_dump(mode="json"))
    headlines = {name: b.model_copy(update={"items": []}) for name, b in results.items()}
    return Result.of(Known(benchmarks=headlines, **throughput(int(generation["tokens"]), generation["seconds"])))


class Known(Recorded, Throughput):
    """What the state records of a knowledge stage: each benchmark's scores and deltas, without its items."""

    benchmarks: dict[str, BenchmarkScores]


def figures(record: StageRecord) -> Known:
    return read_figures(Known, record)


def _task(spec: Knowledge, ctx: StageRun[KnowledgeConfig]) -> tuple[harness.Task, Any]:
    """An lm-eval task as the recipe sets it, its rows loaded (datasets' cache in the stage's scratch)."""
    assert spec.task is not None
    files = {f: ctx.root / v.removeprefix("path:") if v else None for f, v in (("d", spec.data), ("f", spec.fewshot))}
    try:
        return harness.loaded(
            spec.task, ctx.root, data=files["d"], fewshot=files["f"], metric=spec.metric, max_tokens=spec.max_tokens
        )
    except harness.TaskError as e:
        raise AnvilError(f"{spec.task} {e}") from None


def _run_task(spec: Knowledge, loaded: tuple[harness.Task, Any], answer: Callable) -> Graded:
    task, built = loaded
    count = harness.size(built)
    if spec.n > count:
        raise AnvilError(f"{spec.task}: {spec.n} items asked, {count} there (expected n <= {count})")
    indices = sorted(random.Random(spec.seed).sample(range(count), spec.n))
    try:
        items = harness.run(task, built, indices, lambda prompts: answer(prompts, task.name), spec.chat)
    except harness.TaskError as e:
        raise AnvilError(f"{spec.task} {e}") from None
    filters = headline_first(task.filters, spec.filter)
    return Graded(title=task.name, headline=filters[0], filters=filters, items=items, task=task.name)


def _run_protocol(spec: Knowledge, root: Path, answer: Callable) -> Graded:
    assert spec.benchmark is not None
    bench = BENCHMARKS[spec.benchmark]
    items, shots = items_of(spec, root)
    turns = [bench.messages(item, shots, spec.chat) for item in items]
    max_tokens = spec.max_tokens or bench.max_tokens
    responses = answer([(t, max_tokens, bench.stop) for t in turns], bench.title)
    answered = []
    for item, messages, response in zip(items, turns, responses, strict=True):
        grades = {f: filt(response, item) for f, filt in bench.filters.items()}
        answered.append(
            {
                "key": bench.key(item),
                "messages": messages,
                "response": response,
                "extracted": {f: g.extracted for f, g in grades.items()},
                "correct": {f: g.correct for f, g in grades.items()},
            }
        )
    filters = headline_first(list(bench.filters), spec.filter)
    groups = [str(item[bench.groups]) for item in items] if bench.groups else None
    return Graded(title=bench.title, headline=filters[0], filters=filters, items=answered, groups=groups)


def results_of(artifact: Path) -> KnowledgeResults:
    """The typed results of a built knowledge stage."""
    return KnowledgeResults.read(artifact / RESULTS)


def summary(record: StageRecord) -> str:
    return ", ".join(f"{name} {100 * b.score:.0f}%" for name, b in figures(record).benchmarks.items())


TYPICAL_ANSWER = 256  # tokens: a chain of thought usually ends (stop sequence, end of turn) well before its budget


def budget_of(settings: dict[str, Any]) -> int:
    """Tokens an item is expected to generate, as its settings say before anything runs: its budget (a task's
    is known once lm-eval reads it: lm-eval's default stands in), at most a typical answer's length."""
    if settings.get("max_tokens"):
        budget = settings["max_tokens"]
    elif settings.get("benchmark"):
        budget = BENCHMARKS[settings["benchmark"]].max_tokens
    else:
        budget = harness.DEFAULT_MAX_TOKENS
    return min(budget, TYPICAL_ANSWER)


COST = Cost(
    evaluation=True,
    start_s=2.5,
    unit="tokens",
    units=lambda work: sum(b["n"] * budget_of(b) for b in work.settings["benchmarks"]),
    first_run=first_run.generated,
    memory=lambda work: arithmetic.served_memory(work.settings, work.shape, work.in_flight) if work.shape else None,
)


SHOWN = {"score", "delta", "p_value", "ci_low", "ci_high", "significant", "alpha"}  # of a delta, on the page


def page(config: ReportConfig, view: View) -> dict[str, Any]:
    """Per model and benchmark: n, score and, against base and parent, their score, the delta, p and CI."""
    rows: list[dict[str, Any]] = []
    for model in config.evaluated:
        sid = stage_id("knowledge", model)
        if sid not in view.states:
            continue
        found = view.read(sid, results_of)
        if found is None:
            rows.append({"model": model, "state": view.states[sid], "from": sid})
            continue
        rows += [
            {
                "model": model,
                "state": view.states[sid],
                "benchmark": name,
                "title": b.title,
                "filter": b.filter,
                "n": b.n,
                "score": b.score,
                "stderr": b.stderr,
                "groups": {group: share.model_dump() for group, share in b.groups.items()},
                "lm_eval_task": b.lm_eval_task,
                "overlaps_training": b.overlaps_training,
                "from": sid,
            }
            | {role: d.model_dump(include=SHOWN) for role in ("base", "parent") if (d := b.delta(role))}
            for name, b in found.benchmarks.items()
        ]
    return {"knowledge": rows}


def charts(data: dict[str, Any]) -> dict[str, str | None]:
    """Every benchmark's score by model; none when every score is 0% (bars of no height: said in words)."""
    scored = [row for row in data["knowledge"] if "score" in row]
    benchmarks = list(dict.fromkeys(row["benchmark"] for row in scored))
    score = {(row["model"], row["benchmark"]): row["score"] for row in scored}
    series = {m: [score.get((m, b)) for b in benchmarks] for m in dict.fromkeys(row["model"] for row in scored)}
    drawn_at_all = any(row["score"] for row in scored)
    return {"knowledge": drawn(bars, "knowledge", benchmarks, series, "%") if drawn_at_all else None}


STAGE = Stage(
    kind="knowledge",
    code_version=CODE_VERSION,
    nodes=nodes,
    run=run,
    summary=summary,
    cost=COST,
    figures=Known,
    page=page,
    charts=charts,
)
