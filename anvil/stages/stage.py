"""What a stage is: a kind, a code version, a pure expansion of the recipe into graph nodes, and a
`run` that writes only into the work folder it is given (the store renames it into place)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anvil.planning.graph import Node
from anvil.recipe.load import LoadedRecipe
from anvil.recipe.models import Recipe
from anvil.state.store import StageRecord


@dataclass
class StageContext:
    node: Node
    loaded: LoadedRecipe
    workdir: Path | None  # the only place a stage writes; None for a resource (a running process)
    inputs: dict[str, Path]  # artifact folder of each stage in node.needs
    scratch: Path  # survives a crash (checkpoints to resume from); removed once the stage is committed
    logs: Path  # long-lived logs, e.g. of a server started in the background
    cache: Path  # content-addressed results shared by all stages and runs (judge verdicts)
    previous: StageRecord | None = None  # what the state recorded for this stage before this run
    progress: Callable[[float, str], None] = lambda fraction, message: None


@dataclass(frozen=True)
class Stage:
    kind: str
    code_version: int  # bump when a change to `run` changes what it produces
    nodes: Callable[[Recipe], list[Node]]
    run: Callable[[StageContext], dict[str, Any]] | None = None  # None: planned, not buildable yet
    # Resources only: why a recorded process no longer matches its record (None: it does), and how to stop it.
    check: Callable[[StageRecord], str | None] | None = None
    stop: Callable[[StageRecord], None] | None = None


def weights_of(recipe: Recipe, model: str) -> str:
    """The stage whose artifact is a model's full weights: its source for a root, its fuse for a round."""
    return f"{model}.source" if recipe.models[model].source else f"{model}.fuse"
