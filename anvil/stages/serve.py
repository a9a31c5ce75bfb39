"""serve: the recipe's `[serve] model` kept running behind mlx-vlm's OpenAI-compatible server.

A resource, not an artifact: `apply` starts it in the background once the model exists and its
promotion gate is not failed (the planner blocks it otherwise), after checking that the server answers
the same greedy prompts as in-process generation (the agreement rate is recorded); `plan` notices when
the process died or no longer answers; a changed model or option restarts it; removing `[serve] model`
stops it. The process is owned by backends/process.py: its record proves identity before any signal."""

from __future__ import annotations

import time
from typing import Any

from anvil.backends.process import Owned
from anvil.planning.graph import Node
from anvil.planning.record import StageRecord
from anvil.recipe.models import Recipe, Serve
from anvil.stages import source
from anvil.stages.stage import Result, Stage, StageRun, Suites, weights_of

CODE_VERSION = 2
# Greedy prompts compared between in-process generation and the server (the seed's serving validation).
VALIDATION_PROMPTS = [
    "What is 17 * 23?",
    "At what temperature do I forge iron?",
    "The box is red. Later: the box is blue. What colour is the box?",
    "Which is better, tea or coffee?",
    "Thanks!",
]
VALIDATION_TOKENS = 24


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    serve = recipe.serve
    if serve is None or serve.model is None:
        return []
    evaluated = recipe.eval is not None and recipe.eval.suites and serve.model in recipe.eval.compare
    needs = {"model": weights_of(recipe, serve.model)} | ({"gate": f"{serve.model}.gate"} if evaluated else {})
    return [Node("serve", "serve", serve, needs=needs, code_version=CODE_VERSION, model=serve.model, resource=True)]


def _owned(record: StageRecord) -> Owned:
    return Owned.from_json(record.metrics["process"])


def server_of(record: StageRecord):
    """The recorded server, to send requests to."""
    from anvil.backends.server import Server, api_key

    m = record.metrics
    return Server(_owned(record), m["host"], m["port"], api_key(Serve.model_validate(record.config)), m["model"])


def check(record: StageRecord) -> str | None:
    from anvil.backends import process
    from anvil.backends.server import healthy, port_in_use

    m = record.metrics
    if not process.is_ours(_owned(record)):
        if port_in_use(m["host"], m["port"]):
            return f"server process {m['pid']} is gone and another process holds port {m['port']}"
        return f"server process {m['pid']} is not running"
    if not healthy(server_of(record)):
        return f"server process {m['pid']} does not answer on {m['url']}"
    return None


def stop(record: StageRecord) -> None:
    from anvil.backends import process

    process.stop(_owned(record))


def agreement(local: list[str], server) -> dict[str, Any]:
    """The same greedy prompts through the server: how often its text equals in-process generation."""
    from anvil.backends.server import chat

    served = [chat(server, [{"role": "user", "content": p}], VALIDATION_TOKENS)["choices"][0]["message"]["content"]
              for p in VALIDATION_PROMPTS]  # fmt: skip
    agree = sum(a.strip() == (b or "").strip() for a, b in zip(local, served, strict=True))
    return {"validation_prompts": len(VALIDATION_PROMPTS), "validation_agreement": agree / len(VALIDATION_PROMPTS)}


def run(ctx: StageRun[Serve]) -> Result:
    from anvil.backends import server as backend
    from anvil.backends.generation import greedy_texts

    options = ctx.config
    if ctx.previous is not None and ctx.previous.kind == "serve":
        stop(ctx.previous)
    folder = source.checkpoint(ctx.inputs["model"], ctx.root)
    # In-process answers first, model freed before the server loads it: never two copies in memory.
    ctx.progress(0.05, "greedy answers in process, for the serving validation")
    local = greedy_texts(folder, VALIDATION_PROMPTS, VALIDATION_TOKENS)
    ctx.progress(0.4, f"starting mlx-vlm on {options.host}:{options.port}")
    t0 = time.monotonic()
    log = ctx.logs / "serve.log"
    server, child = backend.start(folder, options, log, tethered=False, ledger=ctx.processes)
    started_s = time.monotonic() - t0
    try:
        ctx.progress(0.8, "comparing served answers with in-process ones")
        validation = agreement(local, server)
    except BaseException:
        child.stop()
        raise
    return Result({"pid": server.pid, "process": server.owned.to_json(), "host": server.host, "port": server.port,
                   "url": server.url, "model": server.model, "startup_s": round(started_s, 2), "log": str(log),
                   **validation})  # fmt: skip


STAGE = Stage(kind="serve", code_version=CODE_VERSION, nodes=nodes, run=run, check=check, stop=stop)
