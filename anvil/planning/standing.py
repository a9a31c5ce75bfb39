"""Where each stage of a recipe stands, the one answer every surface gives (`status`, `plan`, the apply
summary and its exit code, `eval show`, the page): its state, why, and whether its recorded figures
describe the stage as it is now built. Pure: records and what probing found in, standings out.

    calibration (failed) -> v2.eval (blocked: figures from before, not current) -> v2.gate (blocked)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum

from anvil.planning.graph import Graph, Node
from anvil.planning.plan import Held, passed_on
from anvil.planning.record import Outcome, StageRecord


class State(str, Enum):
    BUILT = "built"
    WARNED = "warned"
    FAILED = "failed"
    BLOCKED = "blocked"  # needs a stage that failed (or is blocked)
    MISSING = "missing"  # recorded, but its artifact is gone from the store
    UP = "up"  # a resource: its process runs and is this project's
    DOWN = "down"  # a resource that is not running
    FOREIGN = "foreign"  # a resource recorded by another project (a copied state): never touched
    NONE = "none"  # never built
    UNAVAILABLE = "n/a"  # this anvil cannot build that kind of stage yet


BAD = (State.FAILED, State.BLOCKED, State.MISSING, State.DOWN)


@dataclass(frozen=True)
class Standing:
    state: State
    reason: str = ""  # why it is not simply built / up, in one line
    current: bool = True  # whether its recorded figures are those of the stage as now built
    since: str = ""  # when the recorded figures were built

    @property
    def stale(self) -> str:
        """A label for figures that are shown but are not current ("" when they are)."""
        return "" if self.current else f"as built {self.since[:16].replace('T', ' ')}, not current: {self.reason}"

    def to_json(self) -> dict[str, object]:
        return {"state": self.state.value, "reason": self.reason, "current": self.current}


def standings(
    graph: Graph,
    records: Mapping[str, StageRecord],
    problems: Mapping[str, str | None],
    foreign: Collection[str] = (),
) -> dict[str, Standing]:
    """Each stage's standing, in graph order. `problems` holds what probing found wrong with a record (a
    dead or foreign server, a missing artifact); `foreign` the resources another project started."""
    held, found = Held(), dict[str, Standing]()
    for node in graph.order():
        found[node.id] = standing = _one(node, records.get(node.id), records, found, held, problems, foreign)
        # the planner's rule: a failure blocks what needs it while it stands (one from older inputs reruns)
        held.note(node.id, standing.state is State.BLOCKED, standing.state is State.FAILED and standing.current)
    return found


def _one(node: Node, record, records, found, held: Held, problems, foreign) -> Standing:
    blocked = None if node.observer else held.why(node.deps)
    if record is None:
        if node.resource:
            return Standing(State.DOWN, blocked or "not running: `anvil apply` starts it", current=False)
        if blocked:
            return Standing(State.BLOCKED, blocked, current=False)
        return Standing(State.NONE if node.available else State.UNAVAILABLE, current=False)
    gone = [need for need in node.deps if need not in records]
    moved = [
        need
        for need in node.deps
        if need in records and (key := _key(node, records[need])) != record.inputs.get(need, key)
    ]
    stale = [need for need in node.deps if need in found and not found[need].current and need not in gone]
    current = not blocked and not gone and not moved and not stale
    parts = [f"{', '.join(gone)} no longer recorded"] if gone else []
    parts += [f"{', '.join(moved)} changed since"] if moved else []
    parts += [f"{', '.join(stale)} not current"] if stale else []
    why = blocked or "; ".join(parts)
    since = record.started
    if node.resource:
        if problem := problems.get(node.id):
            return Standing(State.FOREIGN if node.id in foreign else State.DOWN, problem, False, since)
        if not current:
            return Standing(State.UP, f"serves what was built before: {why}", False, since)
        return Standing(State.WARNED if record.outcome is Outcome.WARNED else State.UP, _reason(record), True, since)
    if blocked:
        return Standing(State.BLOCKED, blocked, False, since)
    if problem := problems.get(node.id):
        return Standing(State.MISSING, problem, False, since)
    state = {Outcome.FAILED: State.FAILED, Outcome.WARNED: State.WARNED}.get(record.outcome, State.BUILT)
    if not current:
        return Standing(state, why, False, since)
    return Standing(state, _reason(record), True, since)


def _key(node: Node, need: StageRecord) -> str:
    """What a need's record keys `node` by (the planner's rule: an observer reads every artifact as built)."""
    return need.fingerprint if node.observer else passed_on(need, need.fingerprint)


def _reason(record: StageRecord) -> str:
    """Why a record is warned or failed; for one written before records carried a reason, its warnings."""
    if record.outcome is Outcome.OK or record.reason:
        return record.reason
    warnings = record.envelope.warnings or record.envelope.shortfalls
    return "; ".join(map(str, warnings)) or f"recorded as {record.outcome.value}"
