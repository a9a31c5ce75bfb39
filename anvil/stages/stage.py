"""What a stage is: a kind, a code version, a pure expansion of the recipe into graph nodes, and a
`run` that gets the node's typed config (exactly what was fingerprinted) and its inputs by role, never
the recipe, and writes only into the work folder it is given (the store renames it into place)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from anvil.errors import EXIT_ERROR, AnvilError
from anvil.estimates.cost import Cost
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import Outcome, StageRecord
from anvil.recipe.models import Recipe
from anvil.recipe.suite import SuiteTest
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View
from anvil.state.figures import Figures
from anvil.state.project_state import ProjectState

C = TypeVar("C", bound=BaseModel)
Suites = Mapping[str, list[SuiteTest]]  # the recipe's suites, read, by path as `eval.suites` writes it


@dataclass
class StageRun(Generic[C]):
    node: Node
    config: C  # the node's typed config: what was fingerprinted is what runs
    inputs: dict[str, Path]  # artifact folder of each needed stage, by role ("parent", "dataset", ...)
    root: Path  # the recipe's folder, which relative paths in the config are relative to
    workdir: Path | None  # the only place a stage writes; None for a resource (a running process)
    scratch: Path  # survives a crash (checkpoints to resume from); removed once the stage is committed
    cache: Path  # content-addressed results shared by all stages and projects (judge verdicts)
    local: ProjectState  # the project's own: logs, the ledger of processes it started, served models' names
    previous: StageRecord | None = None  # what the state recorded for this stage before this run
    records: Mapping[str, StageRecord] = field(default_factory=dict)  # the records of its inputs, by role
    options: Any = None  # the node's options: how to run, not what to produce (not fingerprinted)

    @property
    def concurrency(self) -> int:
        """Requests to send at once (a `Parallel` option; one without it)."""
        chosen = getattr(self.options, "concurrency", 1)
        return chosen if isinstance(chosen, int) else 1

    progress: Callable[[float, str], None] = lambda fraction, message: None

    @property
    def out(self) -> Path:
        """The work folder of an artifact stage (resources have none)."""
        assert self.workdir is not None, "a resource stage has no work folder"
        return self.workdir


class Parallel(BaseModel):
    """Options of the stages that send many requests: how many at once. Outputs never depend on it."""

    model_config = ConfigDict(defer_build=True)
    concurrency: int | Literal["auto"] = 1  # "auto": the project chooses (estimates/concurrency.py)
    # answers sampled with a seed each: mlx-vlm's server reproduces them one at a time only (a batch draws
    # from one random stream), so "auto" sends them one at a time
    sampled: bool = False


class Throughput(Figures):
    """A generating stage's figures for the page: tokens this run generated and their rate (none resumed)."""

    generated_tokens: int | None = None
    tokens_per_s: float | None = None


def throughput(tokens: int, seconds: float) -> dict[str, Any]:
    """Throughput's fields, when this run generated anything."""
    if tokens <= 0 or seconds <= 0:
        return {}
    return {"generated_tokens": tokens, "tokens_per_s": tokens / seconds}


class Recorded(Figures):
    """What the state records of a finished stage (its StageRecord's metrics), typed: each kind's model derives
    from this, and every reader outside the stage gets them through the stage's `figures`. `imported_from`:
    the folder `anvil import` adopted; `project`: the project a resource (a server) belongs to."""

    imported_from: str | None = None
    project: str | None = None

    def recorded(self) -> dict[str, Any]:
        """As the state holds it: the fields the stage set (a reader's model fills in the rest)."""
        return self.model_dump(mode="json", exclude_unset=True)


R = TypeVar("R", bound=Recorded)


def read_figures(model: type[R], record: StageRecord) -> R:
    """A record's figures as its kind's model (`StageRecord.figures_as`: an error naming the stage when the
    state holds others)."""
    return record.figures_as(model)


@dataclass(frozen=True)
class Result:
    """What a finished stage reports: its metrics (status, report) and its typed outcome."""

    metrics: dict[str, Any] = field(default_factory=dict)
    outcome: Outcome = Outcome.OK
    reason: str = ""  # why it is `warned` or `failed`, in one line
    # The role of the input it passes on unchanged (a sweep's winner: "weights:v2(rank=8)"): what needs it
    # is keyed by that input's fingerprint, not by this stage's (StageRecord.identity).
    passes_on: str = ""

    @classmethod
    def judged(cls, metrics: dict[str, Any], problems: list[str], outcome: Outcome) -> Result:
        """`outcome` with `problems` as its reason when there are any, else ok."""
        return cls(metrics, outcome, "; ".join(problems)) if problems else cls(metrics)

    @classmethod
    def of(cls, figures: Recorded, outcome: Outcome = Outcome.OK, reason: str = "") -> Result:
        """A stage's typed figures, recorded as the state holds them."""
        return cls(figures.recorded(), outcome, reason)


@dataclass(frozen=True)
class Shown:
    """A stage's part of `eval show MODEL`: its figures under `key` (in `--json`), read from its record of
    that model (None: nothing to show), and the lines they print (given the whole report: a verdict may
    need the suites)."""

    key: str
    figures: Callable[[StageRecord, Recipe, str], dict[str, Any] | None]
    lines: Callable[[dict[str, Any], dict[str, Any]], list[str]]


@dataclass(frozen=True)
class Stage:
    kind: str
    code_version: int  # bump when a change to `run` changes what it produces
    nodes: Callable[[Recipe, Suites], list[Node]]
    run: Callable[[StageRun], Result] | None = None  # None: planned, not buildable yet
    # The one or two figures of a recorded result that matter (a loss, a composite, a verdict): `status`
    # shows it for every stage, `plan` beside the stages that say `in_plan` (a gate's last verdict).
    summary: Callable[[StageRecord], str] | None = None
    in_plan: bool = False
    # Resources only: why a recorded process no longer matches its record (None: it does), and how to stop it.
    check: Callable[[StageRecord], str | None] | None = None
    stop: Callable[[StageRecord], bool] | None = None  # stop a resource; whether it was signalled
    # Told once the state records a resource (with the project's ledger): the server is tethered until then.
    recorded: Callable[[StageRecord, Path], object] | None = None
    # A failed outcome: the exit code of the apply that leaves it failed (a gate's is EXIT_GATES), the
    # lines that say what failed (default: the record's reason), and what its failure holds back.
    failure_exit: int = EXIT_ERROR
    failure_lines: Callable[[StageRecord], list[str]] | None = None
    failure_means: str = "what needs it is blocked"
    cost: Cost = Cost()  # what its time and peak memory depend on, for the plan's estimates
    figures: type[Recorded] = Recorded  # what its records hold, typed (`read_figures`)
    # What the live page draws of it while it runs, from its scratch folder (a round's loss curve so far).
    so_far: Callable[[Path], Any] | None = None
    shown: Shown | None = None  # what `eval show MODEL` adds from this stage of the model
    # Its sections of the dashboard's data (`report.json`), by key: what its partial draws, read from the View
    # of every stage's record and artifact. An `architecture` entry adds rows to the page's pipeline table.
    page: Callable[[ReportConfig, View], dict[str, Any]] | None = None
    # The charts its partial inlines (SVG by name), drawn from the page's data (report/charts.py).
    charts: Callable[[dict[str, Any]], dict[str, str | None]] | None = None
    # What `plan` warns of a planned run before apply tries it (a port another process holds), if anything.
    preflight: Callable[[Node, StageRecord | None], str | None] | None = None
    # `anvil import`: a folder made outside Anvil adopted as this stage's artifact. It checks the folder
    # against the recipe and the stage's inputs (an error naming each field that differs), copies it into
    # the work folder, and returns the Result to record; None: this kind cannot be imported.
    adopt: Callable[[StageRun, Path], Result] | None = None


def artifact_json(artifact: Path, name: str) -> Any:
    """A JSON file of a built artifact, read back by a later stage or command: an error naming it when it is
    missing or damaged (deleted by hand, a state that points at another store), never a traceback."""
    path = artifact / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        why = "missing" if isinstance(e, FileNotFoundError) else f"unreadable ({getattr(e, 'strerror', None) or e})"
        raise AnvilError(
            f"{path}: {why}: the artifact was changed outside Anvil or the state belongs to another "
            "store; `anvil plan` shows what to rebuild"
        ) from None


def weights_of(recipe: Recipe, model: str) -> str:
    """The stage whose artifact is a model's full weights: its source for a root, its fuse for a round, its
    quantize for a quantized node, its select (the winner's weights) for a swept round."""
    node = recipe.models[model]
    return stage_id(weights_kind(bool(node.source), bool(node.quantize), bool(node.matrix)), model)


def weights_kind(root: bool, quantized: bool, swept: bool) -> str:
    """The kind of stage whose artifact is a model's weights (`weights_of`; the report asks it from its notes)."""
    return "source" if root else "quantize" if quantized else "select" if swept else "fuse"
