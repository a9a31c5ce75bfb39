"""orpo: Odds Ratio Preference Optimization on preference pairs, through mlx-lm-lora's ORPO trainer: no
reference model; of the preference settings it reads beta alone (the weight of the odds-ratio term)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anvil.methods import pairs
from anvil.methods.method import Session, trainer_args
from anvil.methods.preference import Preference
from anvil.recipe.base import Strict

NAME = "orpo"
ROWS = "preference"
SETTINGS: type[Strict] | None = Preference
TABLE: str | None = "preference"
TABLE_REQUIRED = False
SETTINGS_FIELDS: frozenset[str] | None = frozenset({"beta"})
DISTRIBUTED = False  # one process, for now
REFERENCE = False


def per_row(settings: Mapping[str, Any] | None) -> tuple[int, int]:
    return 2, 0  # chosen and rejected, each through the policy


def problem(settings: Strict | None) -> str | None:
    return None  # its one field, beta, is checked by its type; the others are refused by SETTINGS_FIELDS


def _dataset(rows: list[dict[str, Any]], tokenizer):
    from mlx_lm_lora.trainer.datasets import ORPODataset

    return ORPODataset(rows, tokenizer, system_key="system")


class OrpoTrainer(pairs.PairTrainer):
    def __init__(self, session: Session):
        super().__init__(session, _dataset)

    def _loss(self, model) -> float:
        from mlx_lm_lora.trainer.orpo_trainer import evaluate_orpo

        s, p = self.settings, self.preference
        return float(evaluate_orpo(model, self.valid_set, s.batch_size, s.val_batches, p.beta, s.max_seq_length)[0])

    def train(self, model, optimizer, done: int, recorder) -> None:
        from mlx_lm_lora.trainer import orpo_trainer

        args = orpo_trainer.ORPOTrainingArgs(beta=self.preference.beta, **trainer_args(self.settings, done))
        with self.session.guarded(orpo_trainer):
            orpo_trainer.train_orpo(model, optimizer, self.train_set, None, args=args, training_callback=recorder)


measure = pairs.measure


def trainer(session: Session) -> OrpoTrainer:
    return OrpoTrainer(session)


def results(before: dict[str, float] | None, after: dict[str, float] | None, out: Path) -> dict[str, Any]:
    return pairs.results(NAME, before, after, out)


summary = pairs.summary


def dashboard(settings: Mapping[str, Any] | None, metrics: Mapping[str, Any]) -> dict[str, Any]:
    return pairs.dashboard(NAME, settings, metrics)
