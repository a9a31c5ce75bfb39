"""sft: supervised fine-tuning on chat records, through mlx-lm-lora's SFT trainer (`train_sft`), its loss
the mean token negative log-likelihood; validation by its `evaluate_sft` on fixed batches."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from anvil.errors import AnvilError
from anvil.methods.method import Session
from anvil.recipe.base import Strict

NAME = "sft"
ROWS = "chat"
SETTINGS: type[Strict] | None = None
TABLE: str | None = None
TABLE_REQUIRED = False
SETTINGS_FIELDS: frozenset[str] | None = None
DISTRIBUTED = True
REFERENCE = False


def per_row(settings: Mapping[str, Any] | None) -> tuple[int, int]:
    return 1, 0


def problem(settings: Strict | None) -> str | None:
    return None


class SftTrainer:
    def __init__(self, session: Session):
        from mlx_lm_lora.trainer.datasets import CacheDataset, load_local_dataset
        from mlx_lm_lora.trainer.sft_trainer import get_sft_loss

        self.session, settings = session, session.settings
        data_config = SimpleNamespace(mask_prompt=settings.mask_prompt, train_mode="sft")
        self.train_set, valid_set, _ = load_local_dataset(session.data, session.tokenizer, data_config)
        for name, rows in (("train", self.train_set), ("valid", valid_set)):
            if len(rows) < settings.batch_size:
                raise AnvilError(f"{name}.jsonl has {len(rows)} rows, fewer than batch_size = {settings.batch_size}")
        self.validation = CacheDataset(valid_set)
        self.loss = get_sft_loss("nll")

    def validate(self, model: Any) -> float:
        import numpy as np
        from mlx_lm_lora.trainer.sft_trainer import evaluate_sft

        settings = self.session.settings
        np.random.seed([settings.seed, 0])  # the same validation batches every time
        shared = {"iterate_batches": self.session.shared_validation} if self.session.shared_validation else {}
        result = evaluate_sft(
            model=model,
            dataset=self.validation,
            batch_size=settings.batch_size,
            loss=self.loss,
            num_batches=settings.val_batches,
            max_seq_length=settings.max_seq_length,
            **shared,
        )
        model.train()
        return float(result[0] if isinstance(result, tuple) else result)

    def train(self, model: Any, optimizer: Any, done: int, recorder: Any) -> None:
        from mlx_lm_lora.trainer import sft_trainer
        from mlx_lm_lora.trainer.datasets import CacheDataset

        settings = self.session.settings
        args = sft_trainer.SFTTrainingArgs(
            batch_size=settings.batch_size,
            iters=settings.steps - done,
            val_batches=settings.val_batches,
            steps_per_report=1,
            steps_per_eval=settings.steps + 1,
            steps_per_save=settings.steps + 1,  # checkpoints are Anvil's own (the recorder's): resumable exactly
            adapter_file="adapters.safetensors",  # in the working directory: the checkpoints folder
            max_seq_length=settings.max_seq_length,
            grad_checkpoint=settings.grad_checkpoint,
        )
        with self.session.guarded(sft_trainer):
            sft_trainer.train_sft(
                model=model,
                optimizer=optimizer,
                train_dataset=CacheDataset(self.train_set),
                val_dataset=None,
                args=args,
                loss=self.loss,
                iterate_batches=self.session.batches(done),
                training_callback=recorder,
            )


def measure(session: Session) -> dict[str, float] | None:
    return None  # the validation loss says it


def trainer(session: Session) -> SftTrainer:
    return SftTrainer(session)


def results(before: dict[str, float] | None, after: dict[str, float] | None, out: Path) -> dict[str, Any]:
    return {}


def summary(metrics: Mapping[str, Any]) -> str | None:
    return None  # the loss says it


def dashboard(settings: Mapping[str, Any] | None, metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {"method": NAME}
