"""What the report reads: stage records, artifact folders and each stage's state, by stage id."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anvil.planning.record import StageRecord

# The states a stage is shown in; a model's state is the most telling state of its stages.
STATES = ("running", "failed", "served", "warned", "built", "pending", "blocked", "unavailable")


@dataclass
class View:
    """What the report reads: records and artifact folders by stage id, and each stage's state."""

    root: Path  # the recipe's folder (a `path:` source's weights are there)
    records: dict[str, StageRecord]
    artifacts: dict[str, Path]
    states: dict[str, str]  # stage id -> one of STATES
    live: dict[str, Any] | None = None  # {"updated": ISO time, "running": stage id} while an apply runs
    curves: dict[str, dict] = field(default_factory=dict)  # loss so far of a training in flight, by stage id
    environment: dict[str, Any] = field(default_factory=dict)  # packages and machine (backends/machine.py)

    def built(self, sid: str) -> StageRecord | None:
        """The record of a stage whose artifact can be read now (None while it is pending or running)."""
        readable = self.states.get(sid) in ("built", "warned", "failed", "served")
        return self.records.get(sid) if readable else None

    def first_built(self, kind: str) -> StageRecord | None:
        """The first readable record of a stage of `kind` (the pipeline section's settings: any fuse, any eval)."""
        return next((r for sid, r in self.records.items() if r.kind == kind and self.built(sid)), None)
