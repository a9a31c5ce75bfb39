"""serve: the recipe's `[serve] model` kept running behind mlx-vlm's OpenAI-compatible server.

A resource, not an artifact: `apply` starts it in the background once the model exists, after checking
that the server answers the same greedy prompts as in-process generation (the agreement rate is
recorded); `plan` notices when the process died or no longer answers; a changed model or option
restarts it; removing `[serve] model` stops it."""

from __future__ import annotations

import json
from typing import Any

from anvil.errors import GatesFailed
from anvil.planning.graph import Node
from anvil.recipe.models import Recipe, Serve
from anvil.stages.source import model_dir
from anvil.stages.stage import Stage, StageContext, weights_of
from anvil.state.store import StageRecord

CODE_VERSION = 1
# Greedy prompts compared between in-process generation and the server (the seed's serving validation).
VALIDATION_PROMPTS = [
    "What is 17 * 23?",
    "At what temperature do I forge iron?",
    "The box is red. Later: the box is blue. What colour is the box?",
    "Which is better, tea or coffee?",
    "Thanks!",
]
VALIDATION_TOKENS = 24


def nodes(recipe: Recipe) -> list[Node]:
    serve = recipe.serve
    if serve is None or serve.model is None:
        return []
    options = serve.model_dump(mode="json", exclude={"model"})
    return [
        Node(
            id="serve",
            kind="serve",
            config={"model": serve.model, **options},
            needs=(weights_of(recipe, serve.model), *promotion_gate(recipe, serve.model)),
            code_version=CODE_VERSION,
            model=serve.model,
            resource=True,
        )
    ]


def promotion_gate(recipe: Recipe, model: str) -> tuple[str, ...]:
    """The gate stage a model must pass before it is served, when it is evaluated."""
    evaluated = recipe.eval is not None and recipe.eval.suites and model in recipe.eval.compare
    return (f"{model}.gate",) if evaluated else ()


def _server(record: StageRecord):
    from anvil.backends.server import Server, api_key

    m = record.metrics
    key = api_key(Serve.model_validate(_options(record.config)))
    return Server(m["pid"], m["host"], m["port"], key, m["model"])


def _options(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "model"}


def check(record: StageRecord) -> str | None:
    from anvil.backends.server import healthy, port_in_use
    from anvil.process import alive

    m = record.metrics
    if not alive(m["pid"]):
        if port_in_use(m["host"], m["port"]):
            return f"server process {m['pid']} is gone and another process holds port {m['port']}"
        return f"server process {m['pid']} is not running"
    if not healthy(_server(record)):
        return f"server process {m['pid']} does not answer on {m['url']}"
    return None


def stop(record: StageRecord) -> None:
    from anvil.backends.server import stop as stop_process
    from anvil.process import alive

    if alive(record.metrics["pid"]):
        stop_process(record.metrics["pid"])


def agreement(local: list[str], server) -> dict[str, Any]:
    """The same greedy prompts through the server: how often its text equals in-process generation."""
    from anvil.backends.server import chat

    served = [chat(server, [{"role": "user", "content": p}], VALIDATION_TOKENS)["choices"][0]["message"]["content"]
              for p in VALIDATION_PROMPTS]  # fmt: skip
    agree = sum(a.strip() == (b or "").strip() for a, b in zip(local, served, strict=True))
    return {"validation_prompts": len(VALIDATION_PROMPTS), "validation_agreement": agree / len(VALIDATION_PROMPTS)}


def run(ctx: StageContext) -> dict[str, Any]:
    import time

    from anvil.backends import server as backend
    from anvil.backends.generation import greedy_texts

    options = Serve.model_validate(_options(ctx.node.config))
    for need in ctx.node.needs[1:]:  # the promotion gate
        gates = json.loads((ctx.inputs[need] / "gates.json").read_text())
        if not all(g["passed"] for g in gates["gates"]):
            raise GatesFailed(f"{ctx.node.model} failed its gates ({need}); it is not promoted to the served model")
    if ctx.previous is not None and ctx.previous.kind == "serve":
        stop(ctx.previous)
    folder = model_dir(ctx.inputs[ctx.node.needs[0]])
    # In-process answers first, model freed before the server loads it: never two copies in memory.
    ctx.progress(0.05, "greedy answers in process, for the serving validation")
    local = greedy_texts(folder, VALIDATION_PROMPTS, VALIDATION_TOKENS)
    ctx.progress(0.4, f"starting mlx-vlm on {options.host}:{options.port}")
    t0 = time.monotonic()
    server = backend.start(folder, options, ctx.logs / "serve.log")
    started_s = time.monotonic() - t0
    try:
        ctx.progress(0.8, "comparing served answers with in-process ones")
        validation = agreement(local, server)
    except BaseException:
        backend.stop(server.pid)
        raise
    return {"pid": server.pid, "host": server.host, "port": server.port, "url": server.url, "model": server.model,
            "startup_s": round(started_s, 2), "log": str(ctx.logs / "serve.log"), **validation}  # fmt: skip


STAGE = Stage(kind="serve", code_version=CODE_VERSION, nodes=nodes, run=run, check=check, stop=stop)
