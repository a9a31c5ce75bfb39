"""Walks a Plan in order and applies it: runs stages through the function it is given, commits each
artifact to the store and records the state as soon as each stage finishes, so a crash loses at most
the stage in flight. Tests hand in fake stage functions; `anvil apply` hands in the real ones."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from anvil.errors import AnvilError, StageFailed
from anvil.planning.graph import Graph, Node
from anvil.planning.plan import Act, Action, Plan
from anvil.state.store import StageRecord, Store

# (action, work folder to write into (None for a resource), artifact folders of the stages it needs) -> metrics
RunStage = Callable[[Action, Path | None, dict[str, Path]], dict[str, Any]]
# Stops what a resource record stands for (the server), when its stage leaves the recipe.
Release = Callable[[StageRecord], None]
# (event, action, seconds): event is "start", "done", "restored" or "removed"
OnEvent = Callable[[str, Action, float], None]


@dataclass
class Outcome:
    ran: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def new_record(
    node: Node,
    fingerprint: str,
    prints: dict[str, str],
    files: dict[str, str],
    started: datetime,
    seconds: float,
    metrics: dict[str, Any],
) -> StageRecord:
    """What the state remembers of a finished stage: enough to explain, later, why it must rerun."""
    return StageRecord(
        id=node.id,
        kind=node.kind,
        fingerprint=fingerprint,
        code_version=node.code_version,
        config=node.config,
        inputs={need: prints[need] for need in node.needs},
        files={path: files[path] for path in node.files},
        outputs="",  # set by Store.commit once the folder is in place
        started=started.isoformat(timespec="seconds"),
        duration_s=round(seconds, 3),
        metrics=metrics,
    )


def execute(
    plan: Plan,
    graph: Graph,
    store: Store,
    run_stage: RunStage,
    on_event: OnEvent = lambda *a: None,
    release: Release = lambda record: None,
) -> Outcome:
    records = store.load_state()
    prints = {a.stage: a.fingerprint for a in plan.actions}
    outcome = Outcome()
    for action in plan.actions:
        if action.act is Act.ORPHANED:
            if action.stage in records:
                release(records[action.stage])
            records.pop(action.stage, None)
            store.save_state(records)
            outcome.removed.append(action.stage)
            on_event("removed", action, 0.0)
            continue
        if action.act is Act.RESTORE:
            cached = store.cached(action.fingerprint)
            if cached is not None:
                records[action.stage] = cached.model_copy(update={"id": action.stage})
                store.save_state(records)
                outcome.restored.append(action.stage)
                on_event("restored", action, 0.0)
                continue
            # the cached artifact went bad after planning: build it instead
        elif action.act not in (Act.CREATE, Act.RERUN):
            continue
        node = graph.nodes[action.stage]
        inputs = {need: store.artifact(prints[need]) for need in node.needs}
        workdir = None if node.resource else store.new_workdir(action.stage)
        on_event("start", action, 0.0)
        started, t0 = datetime.now(timezone.utc), time.monotonic()
        try:
            metrics = run_stage(action, workdir, inputs)
        except BaseException as e:
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
            if isinstance(e, AnvilError):
                failed = StageFailed(f"{action.stage} failed:\n{e}")
                failed.exit_code = e.exit_code  # a gate failure stays a gate failure (exit 3)
                raise failed from e
            if isinstance(e, Exception):
                raise StageFailed(f"{action.stage} failed: {type(e).__name__}: {e}") from e
            raise
        record = new_record(node, action.fingerprint, prints, plan.files, started, time.monotonic() - t0, metrics)
        records[action.stage] = record if workdir is None else store.commit(workdir, record)
        store.save_state(records)
        outcome.ran.append(action.stage)
        on_event("done", action, record.duration_s)
    return outcome
