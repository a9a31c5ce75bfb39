"""serve: the recipe's `[serve] model` kept running behind mlx-vlm's OpenAI-compatible server.

A resource, not an artifact: `apply` starts it in the background once the model exists and its
promotion gate is not failed (the planner blocks it otherwise), after checking that the server answers
the same greedy prompts as in-process generation (the agreement rate is recorded); `plan` notices when
the process died or no longer answers; a changed model or option restarts it; removing `[serve] model`
stops it. The process is owned by backends/process.py: its record proves identity before any signal."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from anvil.backends import process
from anvil.backends import server as backend
from anvil.backends.generation import greedy_texts
from anvil.backends.process import Owned
from anvil.errors import AnvilError
from anvil.estimates import arithmetic
from anvil.estimates.cost import Cost
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import Outcome, StageRecord
from anvil.recipe.models import Recipe
from anvil.recipe.serving import KvCache, Serve
from anvil.stages import source
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View
from anvil.stages.stage import Recorded, Result, Shown, Stage, StageRun, Suites, read_figures, weights_of

if TYPE_CHECKING:
    from anvil.backends.process import Owned

CODE_VERSION = 4
# Greedy prompts compared between in-process generation and the server (the seed's serving validation).
VALIDATION_PROMPTS = [
    "What is 17 * 23?",
    "At what temperature do I forge iron?",
    "The box is red. Later: the box is blue. What colour is the box?",
    "Which is better, tea or coffee?",
    "Thanks!",
]
VALIDATION_TOKENS = 24
SAMPLE_TOKENS = 48  # as samples.json was generated (backends/samples.before_and_after)


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    serve = recipe.serve
    if serve is None or serve.model is None:
        return []
    evaluated = recipe.eval and (recipe.eval.suites or recipe.eval.knowledge) and serve.model in recipe.eval.compare
    needs = {"model": weights_of(recipe, serve.model)} | ({"gate": stage_id("gate", serve.model)} if evaluated else {})
    if recipe.models[serve.model].trains:  # a round: its greedy samples as training generated them
        needs["samples"] = stage_id("train", serve.model)
    return [Node("serve", "serve", serve, needs=needs, code_version=CODE_VERSION, model=serve.model, resource=True)]


# The backends (psutil, urllib) are imported by the functions that use them: building the graph, which
# `validate` does, needs none of them.


class Served(Recorded):
    """The running server (its process as the ledger proves it ours) and what its validation found: greedy
    answers as in process (`validation_agreement`; `kv_validation_agreement` with a quantized KV cache,
    against a reference server without one), logprobs, training's own samples; the server's settings as
    validated (a later change is drift)."""

    pid: int
    process: dict[str, Any]  # backends/process.Owned, as JSON
    host: str
    port: int
    url: str
    model: str  # the name it serves the weights as
    startup_s: float | None = None
    log: str | None = None
    validation_prompts: int = 0
    samples_compared: int = 0
    validation_agreement: float | None = None
    kv_validation_agreement: float | None = None
    validation_logprob_diff: float | None = None
    samples_agreement: float | None = None
    settings: dict[str, Any] = {}
    warnings: list[str] = []


def served(record: StageRecord) -> Served:
    return read_figures(Served, record)


def _owned(record: StageRecord) -> Owned:
    return Owned.from_json(served(record).process)


def server_of(record: StageRecord):
    """The recorded server, to send requests to."""

    m = served(record)
    key = backend.api_key(Serve.model_validate(record.config))
    return backend.Server(_owned(record), m.host, m.port, key, m.model)


def check(record: StageRecord) -> str | None:
    m = served(record)
    if not process.is_ours(_owned(record)):
        if backend.port_in_use(m.host, m.port):
            return f"server process {m.pid} is gone and another process holds port {m.port}"
        return f"server process {m.pid} is not running"
    server = server_of(record)
    if not backend.healthy(server):
        return f"server process {m.pid} does not answer on {m.url}"
    return settings_drift(m.settings, backend.settings(server))


def settings_drift(started: dict[str, Any] | None, now: dict[str, Any] | None) -> str | None:
    """Why the server no longer runs with the settings it was started and validated with (a local client's
    PATCH /v1/settings): Terraform's refresh. None when they are the same or it cannot tell."""
    if not started or now is None:
        return None
    changed = [
        f"{k} {started.get(k)!r} -> {now.get(k)!r}"
        for k in sorted(set(started) | set(now))
        if started.get(k) != now.get(k)
    ]
    if not changed:
        return None
    shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
    return f"its runtime settings were changed since it started (PATCH /v1/settings): {shown}"


def recorded(record: StageRecord, ledger) -> object:
    """The state now records the server: cut its tether, so that it outlives this apply."""

    return process.release(_owned(record), ledger)


def preflight(node: Node, previous: StageRecord | None) -> str | None:
    """A planned (re)start whose port something else already holds: apply would fail there, and keep what
    runs now."""
    options = node.config
    assert isinstance(options, Serve)
    recorded = (served(previous).host, served(previous).port) if previous is not None else None
    if recorded == (options.host, options.port) or not backend.port_in_use(options.host, options.port):
        return None  # free, or held by the server the restart stops first
    holder = process.listener(options.port) or "another process"
    return (
        f"serve: port {options.port} on {options.host} is held by {holder}: apply would fail to start the server there"
    )


def is_mine(record: StageRecord, project: str) -> bool:
    """The check before any signal: the project that runs now started it (a copied project's state records
    the original's server), and it is still the very process that was started."""
    return served(record).project == project and process.is_ours(_owned(record))


def stop(record: StageRecord) -> bool:
    return process.stop(_owned(record))


def agreement(local: list[dict], server) -> dict[str, float]:
    """The same greedy prompts through the server: the share of answers equal to in-process generation, and
    the largest difference between the log-probabilities both report for the tokens of the answers that agree."""

    same, worst = 0, 0.0
    for prompt, here in zip(VALIDATION_PROMPTS, local, strict=True):
        reply = backend.chat(server, [{"role": "user", "content": prompt}], VALIDATION_TOKENS, logprobs=True)
        choice = reply["choices"][0]
        if _visible(here["text"]) != _visible(choice["message"]["content"] or ""):
            continue
        same += 1
        served = [t["logprob"] for t in (choice.get("logprobs") or {}).get("content") or []]
        worst = max([worst, *(abs(a - b) for a, b in zip(here["logprobs"], served, strict=False))])
    return {"agreement": same / len(VALIDATION_PROMPTS), "logprob_diff": worst}


def as_trained(samples: list[dict], server) -> float:
    """The round's held-out prompts through the server: the share answered word for word as training's own
    runtime answered them after training (samples.json's `after`, mlx-lm with the adapter)."""

    same = 0
    for sample in samples:
        extra = {"tools": sample["tools"]} if sample.get("tools") else {}
        reply = backend.chat(server, sample["messages"], SAMPLE_TOKENS, **extra)
        same += (reply["choices"][0]["message"]["content"] or "").strip() == sample["after"]
    return same / len(samples)


def _samples(ctx: StageRun[Serve]) -> list[dict]:
    """samples.json of the served round, where it records its prompts (trained before it did, it does not)."""

    if "samples" not in ctx.inputs or not (file := ctx.inputs["samples"] / "samples.json").is_file():
        return []
    return [s for s in json.loads(file.read_text()) if "messages" in s]


def _visible(text: str) -> str:
    """A reply as a reader sees it: bytes that form no character (a streaming server writes U+FFFD for
    each, a whole decode may join them differently) and control characters left out."""
    return "".join(c for c in text if c != "\ufffd" and (c.isprintable() or c in "\n\t")).strip()


def run(ctx: StageRun[Serve]) -> Result:
    options = ctx.config
    folder = source.checkpoint(ctx.inputs["model"], ctx.root)
    # What can fail is checked before the running server is stopped, and only this project's is stopped
    # (a copied project's state records the original's server: it is not ours to stop).
    previous = ctx.previous if ctx.previous is not None and ctx.previous.kind == "serve" else None
    mine = previous if previous is not None and is_mine(previous, ctx.local.id) else None
    frees = mine is not None and (served(mine).host, served(mine).port) == (options.host, options.port)
    if not frees and backend.port_in_use(options.host, options.port):
        holder = process.listener(options.port) or "another process"
        kept = "" if mine is None else f"; the {mine.config.get('model')} at {served(mine).url}/v1 keeps serving"
        raise AnvilError(
            f"serve: port {options.port} on {options.host} is already in use by {holder}{kept}; set another "
            "`[serve] port` in the recipe, or stop that process"
        )
    if mine is not None:
        stop(mine)
    # In-process answers first, model freed before a server loads it: never two copies in memory.
    ctx.progress(0.05, "greedy answers in process, for the serving validation")
    local = greedy_texts(folder, VALIDATION_PROMPTS, VALIDATION_TOKENS)
    samples = _samples(ctx)
    validation: dict[str, Any] = {"validation_prompts": len(VALIDATION_PROMPTS), "samples_compared": len(samples)}
    quantized = options.kv_cache.quantization != "none"
    if quantized:  # the same weights and template without KV quantization must answer exactly the same
        ctx.progress(0.2, "comparing a reference server (no KV quantization) with in-process answers")
        reference = options.model_copy(update={"kv_cache": KvCache(), "port": backend.free_port(options.host)})
        log = ctx.local.logs / "serve.reference.log"
        with backend.running(folder, reference, log, name=options.model, names=ctx.local.names) as server:
            validation["validation_agreement"] = agreement(local, server)["agreement"]
    ctx.progress(0.5, f"starting mlx-vlm on {options.host}:{options.port}")
    t0 = time.monotonic()
    log = ctx.local.logs / "serve.log"
    # Tethered like any child until the state records it (`recorded`): killed before then, it ends too.
    server, child = backend.start(
        folder, options, log, tethered=True, ledger=ctx.local.processes, name=options.model, names=ctx.local.names
    )
    started_s = time.monotonic() - t0
    try:
        ctx.progress(0.8, "comparing served answers with in-process ones and with training's samples")
        found = agreement(local, server)
        validation["kv_validation_agreement" if quantized else "validation_agreement"] = found["agreement"]
        validation["validation_logprob_diff"] = found["logprob_diff"]
        if samples:
            validation["samples_agreement"] = as_trained(samples, server)
    except BaseException:
        child.stop()
        raise
    warnings = _warnings(validation, options.kv_cache)
    validation["settings"] = backend.settings(server)  # as validated: a later change is drift (`check`)
    metrics = Served(
        pid=server.pid,
        process=server.owned.to_json(),
        host=server.host,
        port=server.port,
        url=server.url,
        model=server.model,
        startup_s=round(started_s, 2),
        log=str(log),
        **validation,
        warnings=warnings,
    )
    return Result.judged(metrics.recorded(), warnings, Outcome.WARNED)


def _warnings(validation: dict[str, Any], kv: KvCache) -> list[str]:
    warnings = []
    if validation["validation_agreement"] < 1.0:
        warnings.append(
            f"the server answers {validation['validation_agreement']:.0%} of the validation prompts "
            "like in-process generation, expected all: template or weights differ"
        )
    quantized = f" (with {kv.bits}-bit {kv.quantization} KV quantization from token {kv.start})" * (
        kv.quantization != "none"
    )
    if validation.get("kv_validation_agreement", 1.0) < 1.0:
        warnings.append(
            f"the server agrees on {validation['kv_validation_agreement']:.0%} of the validation prompts{quantized}"
        )
    if validation.get("samples_agreement", 1.0) < 1.0:
        warnings.append(
            f"the server answers {validation['samples_agreement']:.0%} of the round's held-out prompts "
            f"as training generated them (samples.json){quantized}"
        )
    return warnings


def shown(record: StageRecord, recipe: Recipe, model: str) -> dict[str, Any] | None:
    """What the server's validation found, for `eval show` of the model it serves."""
    if record.config.get("model") != model:
        return None
    found = served(record).model_dump(
        include={
            "validation_prompts",
            "validation_agreement",
            "kv_validation_agreement",
            "validation_logprob_diff",
            "samples_compared",
            "samples_agreement",
        },
        exclude_none=True,
    )
    return found | {"kv_cache": record.config.get("kv_cache")}


def summary(record: StageRecord) -> str:
    m = served(record)
    warned = "; WARNING: " + "; ".join(m.warnings) if m.warnings else ""
    return f"{record.config.get('model')} at {m.url}/v1{warned}"


COST = Cost(
    start_s=5.0,
    memory=lambda work: arithmetic.served_memory(work.settings, work.shape, work.in_flight) if work.shape else None,
)


def eval_lines(s: dict[str, Any], report: dict[str, Any]) -> list[str]:
    """The server against in-process generation and against training's own greedy answers."""
    kv = s.get("kv_cache") or {}
    cache = (
        "no KV quantization"
        if kv.get("quantization", "none") == "none"
        else (f"{kv['bits']}-bit {kv['quantization']} KV from token {kv['start']}")
    )
    agreed = s.get("kv_validation_agreement", s.get("validation_agreement"))
    shares = (
        [] if agreed is None else [f"{100 * agreed:.0f}% of {s['validation_prompts']} greedy answers as in process"]
    )
    if "validation_logprob_diff" in s:
        shares.append(f"logprobs within {s['validation_logprob_diff']:.1e}")
    if s.get("samples_compared"):
        shares.append(
            f"{100 * s['samples_agreement']:.0f}% of {s['samples_compared']} held-out prompts as "
            "training answered them (samples.json)"
        )
    return [f"served (mlx-vlm server, {cache}): " + ", ".join(shares)]


def page(config: ReportConfig, view: View) -> dict[str, Any]:
    """The served model: where, its KV cache and how its answers agreed with in-process ones; or its state
    (held back when its gates failed). Its KV cache for the page's pipeline table."""
    record, state = view.records.get("serve"), view.states.get("serve", "pending")
    architecture = {"serve_kv_cache": record.config.get("kv_cache") if record else None}
    if config.served is None:
        return {"serving": None, "architecture": architecture}
    if record is None or state not in ("served", "warned"):
        held = view.states.get(stage_id("gate", config.served)) == "failed"
        held_back = {"model": config.served, "state": "held back: gates failed" if held else state, "from": "serve"}
        return {"serving": held_back, "architecture": architecture}
    m = served(record)
    serving = {
        "model": config.served,
        "state": state,
        "url": m.url,
        "name": m.model,
        "kv_cache": record.config.get("kv_cache", {}),
        "prompts": m.validation_prompts,
        "agreement": m.validation_agreement,
        "kv_agreement": m.kv_validation_agreement,
        "warnings": m.warnings,
        "startup_s": m.startup_s,
        "from": "serve",
    }
    return {"serving": serving, "architecture": architecture}


STAGE = Stage(
    kind="serve",
    code_version=CODE_VERSION,
    nodes=nodes,
    run=run,
    summary=summary,
    in_plan=True,
    check=check,
    stop=stop,
    recorded=recorded,
    cost=COST,
    shown=Shown("served", shown, eval_lines),
    preflight=preflight,
    figures=Served,
    page=page,
)
