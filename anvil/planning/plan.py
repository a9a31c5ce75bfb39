"""The pure planning core: (graph, recorded state, file digests, run-cache lookup) -> Plan.

For each stage, dependencies first, the fingerprint is computed from its config, its inputs'
fingerprints and its files' digests, then compared with what the state recorded, cheapest check first:

    not buildable by this anvil      -> ! unavailable
    needs a failed or blocked stage  -> ! blocked (the one blocking rule, shared with the executor)
    forced by --replace              -> ~ rerun
    same fingerprint, nothing drifted -> = up to date (else ~ rerun, saying what drifted)
    fingerprint built before (cache) -> < restore (no compute; never for running resources)
    ... or in the remote store       -> < restore (downloaded, its digest checked)
    recorded under another print     -> ~ rerun, with the field / file / input that changed
    never recorded                   -> + create
    recorded but gone from the graph -> - orphaned
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from anvil.planning.fingerprint import fingerprint
from anvil.planning.graph import Graph, Node
from anvil.planning.reasons import brief_reasons, changes
from anvil.planning.record import Outcome, StageRecord


class Act(str, Enum):
    CREATE = "create"
    RERUN = "rerun"
    RESTORE = "restore"
    UP_TO_DATE = "up_to_date"
    ORPHANED = "orphaned"
    UNAVAILABLE = "unavailable"
    BLOCKED = "blocked"

    @property
    def symbol(self) -> str:
        return {
            "create": "+",
            "rerun": "~",
            "restore": "<",
            "up_to_date": "=",
            "orphaned": "-",
            "unavailable": "!",
            "blocked": "!",
        }[self.value]

    @property
    def is_change(self) -> bool:
        """Whether apply would do anything for it (unavailable and blocked stages cannot be applied)."""
        return self in (Act.CREATE, Act.RERUN, Act.RESTORE, Act.ORPHANED)


@dataclass(frozen=True)
class Estimate:
    """A change's expected time and peak memory (anvil/estimates/ works them out)."""

    seconds: float | None
    basis: str  # "last run", "history" or "machine probe" (a first run: estimates/first_run.py)
    memory_bytes: float | None = None
    units: float | None = None  # the work the seconds rest on, in UNIT[kind]: recorded beside the time taken
    evaluation: bool = False  # time spent evaluating a model (transcripts, scores, benchmarks, serving checks)

    def to_json(self) -> dict[str, Any]:
        memory_gb = None if self.memory_bytes is None else round(self.memory_bytes / 1e9, 3)
        return {"seconds": self.seconds, "basis": self.basis, "memory_gb": memory_gb}


@dataclass(frozen=True)
class Action:
    stage: str
    kind: str
    act: Act
    fingerprint: str
    reasons: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    detail: str = ""  # what kind of work, where the stage's kind does not say it all (a round's method: dpo)
    brief: tuple[str, ...] = ()  # the reasons summarised for a terminal line (planning/reasons.py); () = all

    def line(self, verbose: bool = False) -> str:
        shown = self.reasons if verbose or not self.brief else self.brief
        label = ", ".join(shown) if shown else self.act.value.replace("_", " ")
        return f"{self.act.symbol} {self.stage}{f' ({self.detail})' if self.detail else ''}: {label}"


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    files: dict[str, str] = field(default_factory=dict)  # the digests planned against
    estimates: dict[str, Estimate] = field(default_factory=dict)  # time and memory of each change
    # stages whose artifact or process no longer matched their record when planned, with why (as probed)
    drifted: Mapping[str, str] = field(default_factory=dict)

    def evaluation_seconds(self) -> float:
        """The part of the estimated time that evaluates models."""
        return sum(e.seconds or 0.0 for e in self.estimates.values() if e.evaluation)

    def estimated_seconds(self) -> float | None:
        """The whole apply's time, when every change has an estimate."""
        found = [self.estimates.get(a.stage) for a in self.changes if a.act is not Act.ORPHANED]
        seconds = [e.seconds for e in found if e is not None and e.seconds is not None]
        return sum(seconds) if len(seconds) == len(found) else None

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.act.is_change]

    @property
    def pending(self) -> list[Action]:
        """Changes, and stages held back by a failed stage (a model built but not promoted): what
        `plan --detailed-exitcode` reports as not done."""
        return [a for a in self.actions if a.act.is_change or a.act is Act.BLOCKED]

    def counts(self) -> dict[str, int]:
        out = {act.value: 0 for act in Act}
        for action in self.actions:
            out[action.act.value] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "changes": bool(self.changes),
            "summary": self.counts(),
            "estimated_seconds": self.estimated_seconds(),
            "actions": [
                {
                    **asdict(a),
                    "act": a.act.value,
                    "reasons": list(a.reasons),
                    "needs": list(a.needs),
                    "estimate": self.estimates[a.stage].to_json() if a.stage in self.estimates else None,
                }
                for a in self.actions
            ],
        }


def make_plan(
    graph: Graph,
    records: Mapping[str, StageRecord],
    files: Mapping[str, str],
    drifted: Mapping[str, str] = {},
    cached: Callable[[str], bool] = lambda fp: False,
    remote: Callable[[str], bool] = lambda fp: False,
    targets: Collection[str] = (),
    replace: Collection[str] = (),
    exclude: Collection[str] = (),
) -> Plan:
    """`drifted`: stages whose recorded artifact or process no longer matches the record, with why.
    `cached(fp)`: whether the store holds an intact artifact for that fingerprint, `remote(fp)` whether the
    shared remote store does. `targets` limits the
    plan to those stages and what they need; `exclude` leaves out those stages and what needs them;
    `replace` forces stages to rerun."""
    for stage in replace:
        if stage not in graph.nodes:
            raise ValueError(f"--replace {stage}: no such stage (expected one of: {', '.join(graph.nodes)})")
    scope = graph.closure(set(targets)) if targets else set(graph.nodes)
    scope -= graph.dependents(set(exclude))
    prints: dict[str, str] = {}
    keys: dict[str, str] = {}  # what each stage's dependents are keyed by (passed_on)
    undecided: set[str] = set()  # reruns whose key is known only once they ran (a select yet to choose)
    unavailable: set[str] = set()
    held = Held()
    actions: list[Action] = []
    for node in graph.order():
        by = keyed_by(node, prints, keys)
        inputs = {need: by[need] for need in node.deps}  # by stage id: what a plan's reasons name
        node_files = {path: files[path] for path in node.files}
        fp = prints[node.id] = stage_print(node, prints, keys, files)
        record = records.get(node.id)
        keys[node.id] = passed_on(record, fp)
        if node.id not in scope:
            continue
        brief: tuple[str, ...] = ()
        waiting = [need for need in node.deps if need in unavailable and not node.observer]
        if not node.available:
            act, reasons, brief = (
                Act.UNAVAILABLE,
                [f"not available: this anvil cannot build {node.kind} stages yet"],
                (),
            )
        elif waiting:
            act, reasons, brief = Act.UNAVAILABLE, [f"not available: needs {', '.join(waiting)}"], ()
        elif not node.observer and (why := held.why(node.deps)):
            act, reasons, brief = Act.BLOCKED, [why], ()
        else:
            act, reasons, brief = _decide(
                node, fp, record, inputs, node_files, drifted.get(node.id), cached, remote, replace
            )
        if act is Act.UNAVAILABLE:
            unavailable.add(node.id)
        if (
            act is Act.RERUN
            and record is not None
            and (record.identity or _only_undecided(node, record, inputs, node_files, undecided))
        ):
            undecided.add(node.id)
            if not record.identity:
                note = f"may stay as built: known once {', '.join(n for n in node.deps if n in undecided)} has run"
                reasons, brief = [*reasons, note], (*brief, note) if brief else ()
        failed = act is Act.UP_TO_DATE and record is not None and record.outcome is Outcome.FAILED
        held.note(node.id, act is Act.BLOCKED, failed)
        actions.append(Action(node.id, node.kind, act, fp, tuple(reasons), node.deps, node.detail, brief))
    if not targets and not exclude:
        for stage, record in records.items():
            if stage not in graph.nodes:
                actions.append(Action(stage, record.kind, Act.ORPHANED, record.fingerprint, ("orphaned",)))
    return Plan(tuple(actions), dict(files), drifted=dict(drifted))


def keyed_by(node: Node, prints: Mapping[str, str], keys: Mapping[str, str]) -> Mapping[str, str]:
    """What a stage's needs are keyed by: what each passes on (`keys`), or, for an observer (the report,
    which reads every artifact as built), their fingerprints (`prints`)."""
    return prints if node.observer else keys


def stage_print(node: Node, prints: Mapping[str, str], keys: Mapping[str, str], files: Mapping[str, str]) -> str:
    """A stage's fingerprint from its needs as they are keyed now, by role: a stage is its content, whatever
    its inputs' ids (a sweep's variant equal to a built round)."""
    by = keyed_by(node, prints, keys)
    return fingerprint(node, {role: by[need] for role, need in node.needs.items()}, {p: files[p] for p in node.files})


def passed_on(record: StageRecord | None, fingerprint: str) -> str:
    """What the stages that need a stage are keyed by: its fingerprint, or, for a current record that
    passes an input on (a sweep's select: its winner's weights), that input's fingerprint. A select that
    reruns and chooses the same winner so reruns nothing after it (the executor re-keys as it goes)."""
    if record is not None and record.identity and record.fingerprint == fingerprint:
        return record.identity
    return fingerprint


def _only_undecided(node: Node, record: StageRecord, inputs, files, undecided: set[str]) -> bool:
    """Whether a stage reruns only because of inputs not decided yet (what a rerunning select passes on)."""
    moved = [need for need in record.inputs.keys() | inputs.keys() if record.inputs.get(need) != inputs.get(need)]
    if not moved or not all(need in undecided for need in moved):
        return False
    return len(changes(node, record, inputs, files)) == len(moved)


FORCED = "forced by --replace"  # the one reason to build what the store already holds


@dataclass
class Held:
    """The one blocking rule, shared by the planner and the executor: a stage that needs a stage whose
    outcome is `failed` (a gate that did not pass) is blocked, and so is whatever needs a blocked stage.

        v2.eval -> v2.gate (failed) -> serve (blocked: v2.gate failed) -> x (blocked: needs serve)
    """

    failed: set[str] = field(default_factory=set)
    blocked: set[str] = field(default_factory=set)

    def why(self, needs: Collection[str]) -> str | None:
        failed = [need for need in needs if need in self.failed]
        if failed:
            return f"blocked: {', '.join(failed)} failed"
        blocked = [need for need in needs if need in self.blocked]
        return f"blocked: needs {', '.join(blocked)}" if blocked else None

    def note(self, stage: str, blocked: bool, failed: bool) -> None:
        if blocked:
            self.blocked.add(stage)
        if failed:
            self.failed.add(stage)


def _decide(
    node: Node, fp, record, inputs, files, drift, cached, remote, replace
) -> tuple[Act, list[str], tuple[str, ...]]:
    """The act, its reasons, and their brief for a terminal line (() when the reasons are brief already)."""
    if node.id in replace:
        return Act.RERUN, [FORCED], ()
    if record is not None and record.fingerprint == fp:
        return (Act.UP_TO_DATE, [], ()) if drift is None else (Act.RERUN, [drift], ())
    found = changes(node, record, inputs, files) if record else []
    full = [text for _, text in found]
    short = brief_reasons(node, record, found) if found else full

    def brief(*then: str) -> tuple[str, ...]:
        return tuple(short) + then if short != full else ()

    if not node.resource and cached(fp):
        restored = "built before: restored from the run-cache"
        return Act.RESTORE, [*full, restored], brief(restored)
    if not node.resource and remote(fp):
        restored = "built before: restored from the remote store"
        return Act.RESTORE, [*full, restored], brief(restored)
    if record is None:
        return Act.CREATE, ["create"], ()
    return Act.RERUN, full or ["fingerprint changed"], brief()
