"""What DPO and ORPO share inside the training child: mlx-lm-lora's preference datasets, validation that
leaves numpy's generator as it found it, and what a preference round is for, measured apart from its loss.
On the held-out pairs: the margin log p(chosen | prompt) - log p(rejected | prompt) (summed over the
answer's tokens, the prompt masked as the trainers mask it) and the share of pairs whose chosen answer is
the likelier, before the round (the parent) and after it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anvil.errors import AnvilError
from anvil.methods.method import Session, split_rows
from anvil.methods.preference import Preference


def dpo_dataset(rows: list[dict[str, Any]], tokenizer):
    from mlx_lm_lora.trainer.datasets import DPODataset

    return DPODataset(rows, tokenizer)


def margins(model, tokenizer, rows: list[dict[str, Any]], max_seq_length: int) -> dict[str, float]:
    """The held-out margin and accuracy of `model` on `rows` (see the module's docstring)."""
    import mlx.core as mx
    from mlx_lm_lora.trainer.dpo_trainer import get_token_scores, iterate_dpo_batches

    differences = []
    for chosen, rejected, chosen_mask, rejected_mask in iterate_dpo_batches(
        dpo_dataset(rows, tokenizer), 1, max_seq_length
    ):
        difference = (
            get_token_scores(model, chosen, chosen_mask).sum() - get_token_scores(model, rejected, rejected_mask).sum()
        )
        differences.append(float(mx.stop_gradient(difference).astype(mx.float32).item()))  # type: ignore[arg-type]
    if not differences:
        return {"margin": 0.0, "accuracy": 0.0}
    return {
        "margin": round(sum(differences) / len(differences), 4),
        "accuracy": round(sum(d > 0 for d in differences) / len(differences), 4),
    }


class PairTrainer:
    """A preference round's datasets and validation; a method adds its loss and its training (`_loss`, `train`)."""

    def __init__(self, session: Session, dataset):
        self.session, self.settings = session, session.settings
        self.preference = session.extra if isinstance(session.extra, Preference) else Preference()
        self.train_set = dataset(split_rows(session.data, "train"), session.tokenizer)
        self.valid_set = dataset(split_rows(session.data, "valid"), session.tokenizer)
        for name, rows in (("train", self.train_set), ("valid", self.valid_set)):
            if len(rows) < self.settings.batch_size:
                raise AnvilError(
                    f"{name}.jsonl has {len(rows)} pairs, fewer than batch_size = {self.settings.batch_size}"
                )

    def validate(self, model) -> float:
        """The validation loss; the trainers draw their batches from numpy's global generator, which this
        leaves as it found it (validating every N steps must not change what is trained)."""
        import numpy as np

        drawing = np.random.get_state()
        np.random.seed([self.settings.seed, 0])
        try:
            return self._loss(model)
        finally:
            np.random.set_state(drawing)
            model.train()

    def _loss(self, model) -> float:
        raise NotImplementedError


def measure(session: Session) -> dict[str, float]:
    """The held-out margin and accuracy of the session's model as it is now."""
    held_out = split_rows(session.data, "valid")
    return margins(session.model, session.tokenizer, held_out, session.settings.max_seq_length)


def results(name: str, before: dict[str, float] | None, after: dict[str, float] | None, out: Path) -> dict[str, Any]:
    assert before is not None and after is not None, "a preference round measures before and after"
    (out / "preference.json").write_text(json.dumps({"method": name, "before": before, "after": after}))
    return {
        "method": name,
        "margin_before": before["margin"],
        "margin_after": after["margin"],
        "accuracy_before": before["accuracy"],
        "accuracy_after": after["accuracy"],
    }


def summary(metrics: Mapping[str, Any]) -> str | None:
    """What moved in a preference round: the held-out margin."""
    if metrics.get("margin_after") is None:
        return None
    valid = f", valid {metrics['valid_loss_last']:.3f}" if metrics.get("valid_loss_last") is not None else ""
    return f"{metrics['method']} margin {metrics['margin_before']:+.1f} -> {metrics['margin_after']:+.1f}{valid}"


def dashboard(name: str, settings: Mapping[str, Any] | None, metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "method": name,
        "beta": (settings or {}).get("beta"),
        **{k: metrics.get(k) for k in ("margin_before", "margin_after", "accuracy_before", "accuracy_after")},
    }
