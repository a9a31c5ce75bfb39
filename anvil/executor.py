"""Walks a Plan in order and applies it: runs stages through the function it is given, commits each
artifact to the store and records the state as soon as each stage finishes, so a crash loses at most
the stage in flight. A stage whose outcome is `failed` is recorded and blocks what needs it (the
planner's rule, `Held`). A stage that ends in an error blocks what needs it too, and the rest goes on, as
Terraform's apply does: the report still shows what was built; the first error is raised at the end.
Tests hand in fake stage functions; `anvil apply` hands in the real ones."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from anvil.errors import AnvilError, StageFailed
from anvil.planning.graph import Graph, Node
from anvil.planning.plan import FORCED, Act, Action, Held, Plan, keyed_by, passed_on, stage_print
from anvil.planning.record import Outcome, StageRecord
from anvil.stages.stage import Result
from anvil.state.project_state import ProjectState
from anvil.state.store import Store

# (action, work folder to write into (None for a resource), artifact folders of its inputs by role) -> result
RunStage = Callable[[Action, Path | None, dict[str, Path]], Result | dict[str, Any]]
# Stops what a resource record stands for (the server), when its stage leaves the recipe.
Release = Callable[[StageRecord], object]
# Told once the state records a resource (the server is tethered to this process until then).
Recorded = Callable[[StageRecord], object]
# Downloads an artifact from the remote store into the store (under its claim): its record, or None when it
# cannot (the stage is then built here).
Fetch = Callable[[str], StageRecord | None]
# (event, action, seconds): "start"; "done", "warned" or "failed" (finished with that outcome); "error" (ended
# in an error, not recorded); "restored" (from the run-cache) or "downloaded" (from the remote store);
# "removed"; "blocked" (needs a failed stage); "waiting" (another project is building the same stage);
# "unchanged" (planned to rerun after a select, which passed on what it passed on before)
OnEvent = Callable[[str, Action, float], None]


@dataclass
class Applied:
    ran: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # finished with a failed outcome (a gate not met)
    blocked: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # planned after a select that chose as before: as built
    errors: list[StageFailed] = field(default_factory=list)  # stages that ended in an error, not recorded


def new_record(
    node: Node,
    fingerprint: str,
    inputs: Mapping[str, str],
    files: dict[str, str],
    started: datetime,
    seconds: float,
    metrics: dict[str, Any],
    outcome: Outcome = Outcome.OK,
    reason: str = "",
    identity: str = "",
) -> StageRecord:
    """What the state remembers of a finished stage: enough to explain, later, why it must rerun.
    `inputs`: what its needs are keyed by, by stage id (`keyed`)."""
    return StageRecord(
        id=node.id,
        kind=node.kind,
        fingerprint=fingerprint,
        code_version=node.code_version,
        config=node.settings,
        inputs=keyed(node, inputs),
        files={path: files[path] for path in node.files},
        outputs="",  # set by Store.commit once the folder is in place
        started=started.isoformat(timespec="seconds"),
        duration_s=round(seconds, 3),
        outcome=outcome,
        reason=reason if outcome is not Outcome.OK else "",
        metrics=metrics,
        identity=identity,
    )


def keyed(node: Node, keys: Mapping[str, str]) -> dict[str, str]:
    """Its needs' keys by stage id (an observer's excluded needs: none)."""
    return {need: keys[need] for need in node.deps if need in keys}


def execute(
    plan: Plan,
    graph: Graph,
    store: Store,
    state: ProjectState,
    run_stage: RunStage,
    on_event: OnEvent = lambda *a: None,
    release: Release = lambda record: None,
    fetch: Fetch = lambda fingerprint: None,
    recorded: Recorded = lambda record: None,
) -> Applied:
    records = state.load()
    prints = {a.stage: a.fingerprint for a in plan.actions}  # each stage's fingerprint: where its artifact is
    # what its dependents are keyed by (planning.plan.passed_on): re-keyed as a select chooses
    keys = {a.stage: passed_on(records.get(a.stage), a.fingerprint) for a in plan.actions}
    held, applied = Held(), Applied()
    for action in plan.actions:
        if action.act is Act.ORPHANED:
            if action.stage in records:
                release(records[action.stage])
            records.pop(action.stage, None)
            state.save(records)
            applied.removed.append(action.stage)
            on_event("removed", action, 0.0)
            continue
        if action.act not in (Act.CREATE, Act.RERUN, Act.RESTORE):
            continue
        node = graph.nodes[action.stage]
        action = _rekeyed(action, node, prints, keys, plan.files)
        prints[action.stage] = action.fingerprint
        record = records.get(action.stage)
        if record is not None and _unchanged(action, record, plan):
            keys[action.stage] = passed_on(record, action.fingerprint)
            applied.unchanged.append(action.stage)
            held.note(action.stage, blocked=False, failed=record.outcome is Outcome.FAILED)
            on_event("unchanged", action, 0.0)
            continue
        if not node.observer and held.why(action.needs):
            held.note(action.stage, blocked=True, failed=False)
            applied.blocked.append(action.stage)
            on_event("blocked", action, 0.0)
            continue
        # An observer's need left out of the plan (`--exclude serve`) is shown as recorded.
        built = {
            need: records[need].fingerprint
            for need in node.deps
            if need in records and records[need].fingerprint == prints.get(need, records[need].fingerprint)
        }
        build = partial(
            _build,
            node,
            action,
            built=built,
            store=store,
            prints=prints,
            keys=keys,
            plan=plan,
            run_stage=run_stage,
            on_event=on_event,
        )
        try:
            t0 = time.monotonic()
            inputs = keyed(node, keyed_by(node, prints, keys))
            record, came = _apply_one(action, node, build, store, state, records, on_event, fetch, inputs)
            keys[action.stage] = passed_on(record, action.fingerprint)
            if node.resource:
                recorded(record)
        except StageFailed as e:
            applied.errors.append(e)
            held.note(action.stage, blocked=True, failed=False)
            on_event("error", action, 0.0)
            continue
        failed = record.outcome is Outcome.FAILED
        held.note(action.stage, blocked=False, failed=failed)
        if failed:
            applied.failed.append(action.stage)
        if came:
            applied.restored.append(action.stage)
            on_event(came, action, time.monotonic() - t0)
        else:
            applied.ran.append(action.stage)
            event = {Outcome.FAILED: "failed", Outcome.WARNED: "warned"}.get(record.outcome, "done")
            on_event(event, action, record.duration_s)
    if applied.errors:
        first = applied.errors[0]
        first.applied = applied
        raise first
    return applied


def _apply_one(action, node, build, store, state, records, on_event, fetch, inputs) -> tuple[StageRecord, str]:
    """Build, restore or download one stage and record it: its record, and how it came without being
    built ("restored" from the run-cache, "downloaded" from the remote store; "" when it was built)."""
    if node.resource:
        record = records[action.stage] = build(None)
        state.save(records)
        return record, ""
    with store.claim(action.fingerprint, on_wait=partial(on_event, "waiting", action, 0.0)):
        # Looked up again under the claim: another project sharing the store may have built it since the
        # plan was made, while we waited or before; only --replace builds it again.
        cached = None if FORCED in action.reasons else store.cached(action.fingerprint)
        how = "restored" if cached is not None else ""
        if cached is None and action.act is Act.RESTORE:  # planned from the remote store
            cached = fetch(action.fingerprint)
            how = "downloaded" if cached is not None else ""
        if cached is None:
            workdir = store.new_workdir(action.stage)
            record = store.commit(workdir, build(workdir))
        else:
            record = cached
        # a restored record may be another stage's of the same content: it is recorded as this one, its
        # inputs by this stage's needs
        records[action.stage] = record.model_copy(update={"id": action.stage, "inputs": inputs})
        state.save(records)  # under the claim: gc never sees a committed artifact no state refers to
    return records[action.stage], how


FULL_BELOW = 64 << 20  # bytes free on the store's disk under which a failed write is taken for a full disk


def _disk_note(workdir: Path | None) -> str:
    """What to add to a stage's error when its disk is (nearly) full: libraries word that their own way
    (MLX: "[write] Unable to write N bytes to file")."""
    if workdir is None:
        return ""
    try:
        free = shutil.disk_usage(workdir.parent).free
    except OSError:
        return ""
    if free >= FULL_BELOW:
        return ""
    return f" (the disk holding {workdir.parent} is full: {free >> 20} MB free; free some space and apply again)"


def _build(node, action, workdir, *, built, store, prints, keys, plan, run_stage, on_event) -> StageRecord:
    """Run one stage into `workdir`; an observer gets only the needs that are `built` (by fingerprint)."""
    inputs = {
        role: store.artifact(built[need] if need in built else prints[need])
        for role, need in node.needs.items()
        if need in built or not node.observer
    }
    on_event("start", action, 0.0)
    started, t0 = datetime.now(timezone.utc), time.monotonic()
    try:
        result = run_stage(action, workdir, inputs)
    except BaseException as e:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        if isinstance(e, AnvilError):
            failed = StageFailed(f"{action.stage} failed:\n{e}")
            failed.exit_code = e.exit_code
            raise failed from e
        if isinstance(e, Exception):
            raise StageFailed(f"{action.stage} failed: {type(e).__name__}: {e}{_disk_note(workdir)}") from e
        raise
    if not isinstance(result, Result):
        result = Result(result)
    seconds = time.monotonic() - t0
    return new_record(
        node,
        action.fingerprint,
        keyed_by(node, prints, keys),
        plan.files,
        started,
        seconds,
        result.metrics,
        result.outcome,
        result.reason,
        identity=keys[node.needs[result.passes_on]] if result.passes_on else "",
    )


def _rekeyed(action: Action, node: Node, prints, keys, files: dict[str, str]) -> Action:
    """The action with its fingerprint from its needs' keys as they now are: a select that ran may pass on
    what it passed on before, and what follows it is then what it was (every need known, else as planned)."""
    if action.act is Act.ORPHANED or not all(need in keyed_by(node, prints, keys) for need in node.deps):
        return action
    fp = stage_print(node, prints, keys, files)
    return action if fp == action.fingerprint else replace(action, fingerprint=fp)


def _unchanged(action: Action, record: StageRecord, plan: Plan) -> bool:
    """Whether a change, re-keyed, is what its record already holds, and nothing else made it a change (a
    drifted artifact or server, --replace)."""
    return (
        action.act in (Act.RERUN, Act.RESTORE)
        and record.fingerprint == action.fingerprint
        and FORCED not in action.reasons
        and action.stage not in plan.drifted
    )
