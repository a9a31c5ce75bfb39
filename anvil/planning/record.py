"""What the state remembers of a finished stage, and its typed outcome. Plain data: the planner reads
records, the state layer stores them, neither owns the other."""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from anvil.errors import AnvilError, first_error

M = TypeVar("M", bound=BaseModel)


class Outcome(str, Enum):
    """How a finished stage ended. `failed` is a result, not a crash (a gate that did not pass): it is
    recorded, and whatever needs that stage is blocked until it changes."""

    OK = "ok"
    WARNED = "warned"
    FAILED = "failed"


class Envelope(BaseModel):
    """What a record's figures may carry whatever its kind, read by the executor, the planner and the page
    (each kind reads the rest through its own model): the project a resource belongs to and the process it
    runs, the folder `anvil import` adopted, a generating stage's rate, and the warnings of a record written
    before records carried a reason."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    project: str | None = None
    pid: int | None = None
    imported_from: str | None = None
    tokens_per_s: float | None = None
    warnings: list[str] = []
    shortfalls: list[str] = []


class StageRecord(BaseModel):
    """What a finished stage was built from and what it produced; the planner diffs against it."""

    model_config = ConfigDict(defer_build=True)  # built when a state is first read: `validate` never is

    id: str
    kind: str
    fingerprint: str
    code_version: int
    config: dict[str, Any]
    inputs: dict[str, str] = Field(description="Fingerprints of the stages it needed, by stage id.")
    files: dict[str, str] = Field(description="Digests of the files it read, by path as the recipe writes it.")
    outputs: str = Field(description="Digest of its artifact folder, to notice edits made outside anvil.")
    started: str
    duration_s: float
    outcome: Outcome = Outcome.OK
    reason: str = Field("", description="Why it ended `warned` or `failed`: one line, shown by every surface.")
    metrics: dict[str, Any] = {}
    identity: str = Field(
        "",
        description="What the stages that read its artifact are keyed by when that is not its fingerprint: "
        "a sweep's select passes on its winner's weights, so a new variant that does not win reruns nothing after it.",
    )

    def figures_as(self, model: type[M]) -> M:
        """Its figures as `model`: an error naming the stage when the state holds others (written by another
        version of Anvil, or edited by hand), never a KeyError later."""
        try:
            return model.model_validate(self.metrics)
        except ValidationError as e:
            where, said = first_error(e)
            raise AnvilError(
                f"{self.id}: the state's figures are not this Anvil's ({where or 'its figures'}: {said}); "
                "`anvil plan` shows what to rebuild"
            ) from None

    @property
    def envelope(self) -> Envelope:
        return self.figures_as(Envelope)
