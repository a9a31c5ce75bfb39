"""transcripts: a model's conversations on the behavioural suites, generated through its own mlx-vlm
server (the serving path, with the recipe's KV settings), N runs each with its own sampling seed.

Only what generation depends on is fingerprinted (each test's prompt part, runs, sampling, KV cache):
changing a rubric, the judge or a display threshold re-scores (stages/evaluate.py) without generating
anything. Each finished conversation is kept in the stage's scratch folder, so an interrupted run
generates only what is missing. `model_server` and `resumable` are what other generating stages reuse."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from anvil.backends.server import free_port, running
from anvil.estimates import arithmetic, first_run
from anvil.estimates.cost import Cost, Work
from anvil.evaluation.agent import converse
from anvil.evaluation.parallel import in_order
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.models import Recipe
from anvil.recipe.serving import KvCache, Serve
from anvil.recipe.suite import Prompt
from anvil.stages import source
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
    artifact_json,
    read_figures,
    throughput,
    weights_of,
)
from anvil.state.atomic import write_json

CODE_VERSION = 1
ARTIFACT = "transcripts.json"


class TranscriptsConfig(Strict):
    suites: dict[str, dict[str, Prompt]]  # suite name -> test id -> what the model is asked
    runs: int
    temperature: float
    max_tokens: int
    kv_cache: KvCache


def suite_name(path: str) -> str:
    """A suite's name in metrics (`tiny.composite`): its folder's name."""
    return Path(path).name


def calibrated_suites(recipe: Recipe, suites: Suites) -> dict[str, str]:
    """Suite name -> its calibration stage, for the suites that ship a calibration set."""
    paths = recipe.eval.suites if recipe.eval else []
    return {
        suite_name(p): stage_id("calibration", suite_name(p))
        for p in paths
        if getattr(suites.get(p), "calibration", None)
    }


def config_of(recipe: Recipe, suites: Suites) -> TranscriptsConfig | None:
    """What every evaluated model is asked (the same for each), or None when the recipe has no suites."""
    settings = recipe.eval
    if settings is None or not settings.suites:
        return None
    return TranscriptsConfig(
        suites={suite_name(p): {t.id: t.prompt() for t in suites[p]} for p in settings.suites},
        runs=settings.runs,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        kv_cache=(recipe.serve or Serve()).kv_cache,
    )


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    config = config_of(recipe, suites)
    if recipe.eval is None or config is None:
        return []
    settings = recipe.eval
    options = Parallel(concurrency=settings.concurrency, sampled=settings.temperature > 0)
    return [
        Node(
            stage_id("transcripts", name),
            "transcripts",
            config,
            needs={"model": weights_of(recipe, name)},
            code_version=CODE_VERSION,
            model=name,
            options=options,
        )
        for name in settings.compare
    ]


@contextmanager
def model_server(ctx: StageRun, max_tokens: int, kv_cache: KvCache) -> Iterator[Any]:
    """The stage's `model` input behind its own mlx-vlm server on a free loopback port, for the block."""

    options = Serve(port=free_port(), max_tokens=max_tokens, kv_cache=kv_cache)
    folder = source.checkpoint(ctx.inputs["model"], ctx.root)
    log, local = ctx.local.logs / f"{ctx.node.id}.server.log", ctx.local
    with running(folder, options, log, ledger=local.processes, name=ctx.node.model, names=local.names) as server:
        yield server


def resumable(scratch: Path, names: list[str], produce: Callable[[list[str]], Iterator[tuple[str, Any]]]) -> dict:
    """Every named item, produced once: items finished by an earlier, interrupted run are read from
    `scratch`; `produce(missing)` yields (name, value) for the rest, each saved as soon as it exists."""
    scratch.mkdir(parents=True, exist_ok=True)
    missing = [name for name in names if not (scratch / f"{name}.json").exists()]
    if missing:
        for name, value in produce(missing):
            write_json(scratch / f"{name}.json", value)
    return {name: json.loads((scratch / f"{name}.json").read_text()) for name in names}


def run(ctx: StageRun[TranscriptsConfig]) -> Result:
    config = ctx.config
    items = {
        f"{suite}.{test_id}.run{r}": (prompt, r)
        for suite, tests in config.suites.items()
        for test_id, prompt in tests.items()
        for r in range(config.runs)
    }
    generated, tokens, seconds = 0, 0, 0.0

    def produce(missing: list[str]) -> Iterator[tuple[str, Any]]:
        nonlocal generated, tokens, seconds
        with model_server(ctx, config.max_tokens, config.kv_cache) as server:
            started = time.perf_counter()

            def talk(name: str) -> dict:
                prompt, r = items[name]
                return {
                    "transcript": converse(
                        server, prompt, seed=r, temperature=config.temperature, max_tokens=config.max_tokens
                    )
                }

            for i, (name, value) in enumerate(in_order(talk, missing, ctx.concurrency)):
                ctx.progress(i / len(missing), f"{name.rsplit('.', 1)[0]} run {items[name][1] + 1}")
                generated, tokens = generated + 1, tokens + value["transcript"].get("completion_tokens", 0)
                yield name, value
            seconds = time.perf_counter() - started

    done = resumable(ctx.scratch, list(items), produce)
    out = {
        suite: {
            test_id: [done[f"{suite}.{test_id}.run{r}"]["transcript"] for r in range(config.runs)] for test_id in tests
        }
        for suite, tests in config.suites.items()
    }
    write_json(ctx.out / ARTIFACT, {"suites": out})
    return Result.of(Generated(conversations=len(items), generated=generated, **throughput(tokens, seconds)))


class Generated(Recorded, Throughput):
    conversations: int  # every run of every test
    generated: int  # of them, generated by this run (the others resumed)


def read(artifact: Path) -> dict[str, dict[str, list[dict]]]:
    """Suite -> test id -> one transcript per run, of a built transcripts stage."""
    return artifact_json(artifact, ARTIFACT)["suites"]


def summary(record: StageRecord) -> str:
    m = read_figures(Generated, record)
    return f"{m.conversations} conversations ({m.generated} generated)"


def _tokens(work: Work) -> float:
    """Generated tokens, at most."""
    tests = sum(len(suite) for suite in work.settings["suites"].values())
    return tests * work.settings["runs"] * work.settings["max_tokens"]


def page(config: ReportConfig, view: View) -> dict[str, Any]:
    """The KV cache the evaluation generated with, for the page's pipeline table."""
    generated = view.first_built("transcripts")
    return {"architecture": {"eval_kv_cache": generated.config.get("kv_cache") if generated else None}}


COST = Cost(
    evaluation=True,
    start_s=2.5,
    unit="tokens",
    units=_tokens,
    first_run=first_run.generated,
    memory=lambda work: arithmetic.served_memory(work.settings, work.shape, work.in_flight) if work.shape else None,
)


STAGE = Stage(
    kind="transcripts",
    code_version=CODE_VERSION,
    nodes=nodes,
    run=run,
    summary=summary,
    cost=COST,
    figures=Generated,
    page=page,
)
