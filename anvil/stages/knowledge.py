"""knowledge: knowledge-preservation benchmarks (GSM8K-CoT, MMLU-Pro) of an evaluated model, run as
lm-evaluation-harness runs them, through the model's own server (the serving path), greedy.

The same `n` items for every model (drawn by seed), each item's prompt, answer, extraction and grade
kept in `results.json`, and deltas against base and parent that are paired item by item: McNemar's
exact test and a 95% interval (evaluation/stats.py). Finished items are kept in the stage's scratch
folder: an interrupted run generates only what is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from anvil.backends import hub
from anvil.backends.server import chat_until
from anvil.errors import AnvilError
from anvil.estimates import arithmetic, first_run
from anvil.estimates.cost import Cost
from anvil.evaluation import stats
from anvil.evaluation.parallel import in_order
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
from anvil.stages.stage import Parallel, Result, Stage, StageRun, Suites, artifact_json, weights_of
from anvil.state.atomic import write_json

CODE_VERSION = 4  # 4: answers streamed to the stop sequence, chat forms, per-subject scores
RESULTS = "results.json"


class KnowledgeConfig(Strict):
    benchmarks: list[Knowledge]
    kv_cache: KvCache
    alpha: float = 0.05


def files_of(spec: Knowledge) -> list[str]:
    """The local files a benchmark reads (Hub files are pinned by their repo's cache instead)."""
    return [
        w.removeprefix("path:")
        for w in benchmark_data.sources(spec.benchmark, spec.data, spec.fewshot)
        if w is not None and w.startswith("path:")
    ]


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    settings = recipe.eval
    if settings is None or not settings.knowledge:
        return []
    config = KnowledgeConfig(
        benchmarks=settings.knowledge, kv_cache=(recipe.serve or Serve()).kv_cache, alpha=settings.alpha
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
    plans: dict[str, tuple[Knowledge, list[dict], list[list[dict]]]] = {}
    for spec in config.benchmarks:
        items, shots = items_of(spec, ctx.root)
        bench = BENCHMARKS[spec.benchmark]
        name = benchmark_data.metric_name(spec)
        plans[name] = (spec, items, [bench.messages(item, shots, spec.chat) for item in items])
    names = [f"{name}.{i:05d}" for name, (_, items, _) in plans.items() for i in range(len(items))]
    budget = max((s.max_tokens or BENCHMARKS[s.benchmark].max_tokens) for s, _, _ in plans.values())

    def produce(missing: list[str]) -> Iterator[tuple[str, Any]]:
        with transcripts.model_server(ctx, budget, config.kv_cache) as server:

            def answer(item_name: str) -> dict:
                name, index = item_name.rsplit(".", 1)
                spec, _, turns = plans[name]
                bench = BENCHMARKS[spec.benchmark]
                text, stopped = chat_until(server, turns[int(index)], spec.max_tokens or bench.max_tokens, bench.stop)
                return {"response": text, "stopped": stopped}

            for i, (item_name, value) in enumerate(in_order(answer, missing, ctx.concurrency)):
                ctx.progress(i / len(missing), f"{item_name}")
                yield item_name, value

    done = transcripts.resumable(ctx.scratch, names, produce)
    others = {role: results_of(ctx.inputs[role]) for role in ("base", "parent") if role in ctx.inputs}
    results, metrics = {}, {}
    for name, (spec, items, prompts) in plans.items():
        bench = BENCHMARKS[spec.benchmark]
        graded: list[dict[str, Any]] = []
        for i, (item, turns) in enumerate(zip(items, prompts, strict=True)):
            response = truncate(done[f"{name}.{i:05d}"]["response"], bench.stop)
            grades = {f: filt(response, item) for f, filt in bench.filters.items()}
            graded.append(
                {
                    "key": bench.key(item),
                    "messages": turns,
                    "response": response,
                    "extracted": {f: g.extracted for f, g in grades.items()},
                    "correct": {f: g.correct for f, g in grades.items()},
                }
            )
        headline = next(iter(bench.filters))
        scores = {f: accuracy([g["correct"][f] for g in graded]) for f in bench.filters}
        summary: dict[str, Any] = {
            "title": bench.title,
            "n": len(graded),
            "filter": headline,
            "chat": spec.chat,
            "scores": {f: a["score"] for f, a in scores.items()},
            "stderrs": {f: a["stderr"] for f, a in scores.items()},
            "score": scores[headline]["score"],
            "stderr": scores[headline]["stderr"],
        }
        if bench.groups:  # lm-eval's sub-scores (MMLU-Pro's subjects), each with its own standard error
            by: dict[str, list[bool]] = {}
            for item, g in zip(items, graded, strict=True):
                by.setdefault(str(item[bench.groups]), []).append(g["correct"][headline])
            summary["groups"] = {group: accuracy(correct) for group, correct in sorted(by.items())}
        for role, other in others.items():
            theirs = {g["key"]: g["correct"][headline] for g in other["benchmarks"].get(name, {}).get("items", [])}
            if len(theirs) == len(graded) and all(g["key"] in theirs for g in graded):
                mine = [g["correct"][headline] for g in graded]
                alpha = ctx.config.alpha
                compared = stats.mcnemar(mine, [theirs[g["key"]] for g in graded], alpha).to_json()
                compared |= {
                    "alpha": alpha,
                    "significant": stats.significant(compared["p_value"], alpha),
                }
                summary[f"delta_vs_{role}"] = {**compared, "score": other["benchmarks"][name]["score"]}
        results[name] = {**summary, "items": graded}
        metrics[name] = summary
    write_json(ctx.out / RESULTS, {"benchmarks": results})
    return Result({"benchmarks": metrics})


def accuracy(correct: list[bool]) -> dict[str, Any]:
    """The share correct and its standard error as lm-eval reports it (the sample's, over n - 1)."""
    n, score = len(correct), sum(correct) / len(correct)
    return {"n": n, "score": score, "stderr": (score * (1 - score) / (n - 1)) ** 0.5 if n > 1 else None}


def results_of(artifact: Path) -> dict[str, Any]:
    """{"benchmarks": {name: {title, n, filter, scores, score, delta_vs_base?, delta_vs_parent?, items}}}."""
    return artifact_json(artifact, RESULTS)


def summary(record: StageRecord) -> str:
    return ", ".join(f"{name} {100 * b['score']:.0f}%" for name, b in record.metrics.get("benchmarks", {}).items())


COST = Cost(
    evaluation=True,
    start_s=2.5,
    unit="tokens",
    units=lambda work: sum(b["n"] * (b["max_tokens"] or 256) for b in work.settings["benchmarks"]),
    first_run=first_run.generated,
    memory=lambda work: arithmetic.served_memory(work.settings, work.shape, work.in_flight) if work.shape else None,
)


STAGE = Stage(kind="knowledge", code_version=CODE_VERSION, nodes=nodes, run=run, summary=summary, cost=COST)
