"""What a training method is: a module with the names below (`Method`), listed in registry.py. A method
says what rows it trains on, which recipe settings it takes, how much memory a step needs beside the
policy's, how it trains inside the training child (`trainer`), what it measures before and after, and what it
adds to status and the dashboard.

Its `trainer` runs only in the child (backends/lora_worker.py), which hands it a `Session`: the one code
outside backends/ that imports mlx-lm-lora, so that a method is one module."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from anvil.recipe.base import Strict


@dataclass
class Session:
    """What the training child hands a method: the policy with its adapters, its tokenizer, the round's data
    folder (train.jsonl, valid.jsonl), its settings, the parent's checkpoint, and the child's own helpers."""

    model: Any
    tokenizer: Any
    data: Path
    settings: Any  # the round's `train` settings (recipe/models.py's Train)
    extra: Strict | None  # the method's own settings (SETTINGS), as the recipe gave them
    parent: str  # the parent's checkpoint folder: a reference model loads it again
    batches: Callable[[int], Any]  # iterate_batches from a resumed step, drawn by Anvil's seed
    shared_validation: Any  # this process's share of validation batches (None in one process)
    guarded: Callable[..., Any]  # a context manager for a trainer module's Metal-only calls on the CPU
    # A judge reward's judge: called with (SUITE/TEST, transcript) pairs, it returns their verdicts (`score`
    # 0-5, `panel`: each member's score, in the order of its `members` labels); None without a judge reward.
    judge: Any = None


def split_rows(data: Path, split: str) -> list[dict[str, Any]]:
    """The rows of a round's data folder split (train.jsonl, valid.jsonl), as the dataset stage wrote them."""
    return [json.loads(line) for line in (data / f"{split}.jsonl").read_text().splitlines() if line.strip()]


def trainer_args(settings: Any, done: int) -> dict[str, Any]:
    """The arguments every mlx-lm-lora trainer beyond SFT takes from a round's `train` settings, resuming at step
    `done`; numpy seeded by the seed and that step, so a rerun from the same checkpoint draws the same batches.
    Checkpoints are Anvil's own (the recorder's): the trainer's evaluation and saving never come."""
    import numpy as np

    np.random.seed([settings.seed, done])
    return dict(
        batch_size=settings.batch_size,
        iters=settings.steps - done,
        val_batches=settings.val_batches,
        steps_per_report=1,
        steps_per_eval=settings.steps + 1,
        steps_per_save=settings.steps + 1,
        adapter_file="adapters.safetensors",
        max_seq_length=settings.max_seq_length,
        grad_checkpoint=settings.grad_checkpoint,
    )


class Trainer(Protocol):
    def validate(self, model: Any) -> float | None:
        """The validation loss at this step, leaving every random generator as it found it (None: the method
        has no loss to hold out, and measures what it is for before and after instead)."""
        ...

    def train(self, model: Any, optimizer: Any, done: int, recorder: Any) -> None:
        """Steps `done + 1` to `settings.steps`, reporting each to `recorder` (mlx-lm's callback)."""
        ...


class Method(Protocol):
    NAME: str  # what `method =` says in the recipe
    ROWS: str  # the dataset format it trains on: "chat", "preference" or "prompt"
    SETTINGS: type[Strict] | None  # its settings, None if it takes none
    TABLE: str | None  # the round's table that holds them (`preference`, `grpo`); methods may share one
    # Whether a round must give that table (a GRPO round's reward); else its defaults stand in when omitted.
    TABLE_REQUIRED: bool
    SETTINGS_FIELDS: frozenset[str] | None  # the fields of SETTINGS it reads (None: all)
    DISTRIBUTED: bool  # whether a round may train data-parallel over processes
    REFERENCE: bool  # whether a frozen copy of the parent is held beside the policy

    def per_row(self, settings: Mapping[str, Any] | None) -> tuple[int, int]:
        """What a row of a batch costs a step, for the plan: sequences through the policy (a pair is two, a
        GRPO group `group_size`), and tokens generated before the step, all rows decoding together (0 but
        for a method that samples its own answers)."""
        ...

    def problem(self, settings: Strict | None) -> str | None:
        """What the method refuses in its settings beyond their types (read with the recipe), if anything."""
        ...

    def measure(self, session: Session) -> dict[str, Any] | None:
        """What the round is meant to move, measured on held-out data: the child asks on the parent (before
        any adapter) and once trained. None: nothing beyond the loss."""
        ...

    def trainer(self, session: Session) -> Trainer:
        """The round's training, once the adapters are in place."""
        ...

    def results(self, before: dict[str, Any] | None, after: dict[str, Any] | None, out: Path) -> dict[str, Any]:
        """The method's metrics from what `measure` found before and after (and the files it writes in `out`)."""
        ...

    def summary(self, metrics: Mapping[str, Any]) -> str | None:
        """The figures `status` shows for a finished round, if the method has its own (else the loss's)."""
        ...

    def dashboard(self, settings: Mapping[str, Any] | None, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """The method's rows of a round on the dashboard: its settings and figures."""
        ...
