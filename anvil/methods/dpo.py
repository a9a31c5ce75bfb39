"""dpo: Direct Preference Optimization on preference pairs, through mlx-lm-lora's DPO trainer, against the
parent's fused weights as the frozen reference (loaded a second time: memory counts it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anvil.methods import pairs
from anvil.methods.method import Session, trainer_args
from anvil.methods.preference import Preference
from anvil.recipe.base import Strict

NAME = "dpo"
ROWS = "preference"
SETTINGS: type[Strict] | None = Preference
TABLE: str | None = "preference"
TABLE_REQUIRED = False
SETTINGS_FIELDS: frozenset[str] | None = None  # beta, loss_type, delta (DPOP's), reference
DISTRIBUTED = False  # one process, for now
REFERENCE = True


def per_row(settings: Mapping[str, Any] | None) -> tuple[int, int]:
    return 2, 0  # chosen and rejected, each through the policy


def problem(settings: Strict | None) -> str | None:
    """DPOP's penalty belongs to DPOP."""
    if isinstance(settings, Preference) and "delta" in settings.model_fields_set and settings.loss_type != "dpop":
        return f"preference.delta is DPOP's (loss_type = 'dpop'), not {settings.loss_type!r}'s"
    return None


class DpoTrainer(pairs.PairTrainer):
    def __init__(self, session: Session):
        from mlx_lm import load

        super().__init__(session, pairs.dpo_dataset)
        self.reference, _ = load(session.parent)  # the parent's fused weights: the model the round starts from
        self.reference.freeze()
        self.reference.eval()

    def _loss(self, model) -> float:
        from mlx_lm_lora.trainer.dpo_trainer import evaluate_dpo

        s, p = self.settings, self.preference
        result = evaluate_dpo(
            model,
            self.reference,
            self.valid_set,
            s.batch_size,
            s.val_batches,
            p.beta,
            p.delta,
            s.max_seq_length,
            p.loss_type,
        )
        return float(result[0])

    def train(self, model, optimizer, done: int, recorder) -> None:
        from mlx_lm_lora.trainer import dpo_trainer

        p = self.preference
        args = dpo_trainer.DPOTrainingArgs(
            beta=p.beta, loss_type=p.loss_type, delta=p.delta, **trainer_args(self.settings, done)
        )
        with self.session.guarded(dpo_trainer):
            dpo_trainer.train_dpo(
                model,
                self.reference,
                optimizer,
                self.train_set,
                None,
                args=args,
                training_callback=recorder,
                loss_type=p.loss_type,
            )


measure = pairs.measure


def trainer(session: Session) -> DpoTrainer:
    return DpoTrainer(session)


def results(before: dict[str, float] | None, after: dict[str, float] | None, out: Path) -> dict[str, Any]:
    return pairs.results(NAME, before, after, out)


summary = pairs.summary


def dashboard(settings: Mapping[str, Any] | None, metrics: Mapping[str, Any]) -> dict[str, Any]:
    return pairs.dashboard(NAME, settings, metrics)
