"""What the report reads: stage records, artifact folders and each stage's state, by stage id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from anvil.errors import AnvilError
from anvil.planning.record import StageRecord

T = TypeVar("T")

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

    def read(self, sid: str, reader: Callable[[Path], T]) -> T | None:
        """A built stage's artifact as `reader` reads it; None when it is not built, gone or damaged: shown as
        missing, never guessed."""
        if self.built(sid) is None or sid not in self.artifacts:
            return None
        try:
            return reader(self.artifacts[sid])
        except (OSError, ValueError, KeyError, AnvilError):
            return None
