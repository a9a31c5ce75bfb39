"""DPO and ORPO rounds inside the training child (backends/lora_worker.py): mlx-lm-lora's preference
datasets, trainers and evaluators, given Anvil's reference model (the parent's fused weights, frozen), its
validation at absolute steps and its checkpoints, as SFT rounds get them.

What a preference round is for is measured apart from its loss: on the held-out pairs, the margin
log p(chosen | prompt) - log p(rejected | prompt) (summed over the answer's tokens, the prompt masked as
the trainers mask it) and the share of pairs whose chosen answer is the likelier, before the round (the
parent) and after it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anvil.errors import AnvilError
from anvil.recipe.models import Train
from anvil.recipe.preference import Preference


def pairs(data: Path, split: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (data / f"{split}.jsonl").read_text().splitlines() if line.strip()]


def dataset(method: str, rows: list[dict[str, Any]], tokenizer):
    """mlx-lm-lora's dataset for the method: pairs tokenized with the model's chat template."""
    from mlx_lm_lora.trainer.datasets import DPODataset, ORPODataset

    if method == "orpo":
        return ORPODataset(rows, tokenizer, system_key="system")
    return DPODataset(rows, tokenizer)


def margins(model, tokenizer, rows: list[dict[str, Any]], max_seq_length: int) -> dict[str, float]:
    """The held-out margin and accuracy of `model` on `rows` (see the module's docstring)."""
    import mlx.core as mx
    from mlx_lm_lora.trainer.dpo_trainer import get_token_scores, iterate_dpo_batches

    differences = []
    for chosen, rejected, chosen_mask, rejected_mask in iterate_dpo_batches(dataset("dpo", rows, tokenizer), 1,
                                                                            max_seq_length):  # fmt: skip
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


class Round:
    """One preference round's datasets, reference model, validation and training."""

    def __init__(self, method: str, settings: Train, preference: Preference, parent: str, data: Path, tokenizer):
        from mlx_lm import load

        self.method, self.settings, self.preference = method, settings, preference
        self.train_set = dataset(method, pairs(data, "train"), tokenizer)
        self.valid_set = dataset(method, pairs(data, "valid"), tokenizer)
        for name, rows in (("train", self.train_set), ("valid", self.valid_set)):
            if len(rows) < settings.batch_size:
                raise AnvilError(f"{name}.jsonl has {len(rows)} pairs, fewer than batch_size = {settings.batch_size}")
        self.reference = None
        if method == "dpo":
            self.reference, _ = load(parent)  # the parent's fused weights: the model the round starts from
            self.reference.freeze()
            self.reference.eval()

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
        s, p = self.settings, self.preference
        if self.method == "orpo":
            from mlx_lm_lora.trainer.orpo_trainer import evaluate_orpo

            result = evaluate_orpo(model, self.valid_set, s.batch_size, s.val_batches, p.beta, s.max_seq_length)
        else:
            from mlx_lm_lora.trainer.dpo_trainer import evaluate_dpo

            result = evaluate_dpo(model, self.reference, self.valid_set, s.batch_size, s.val_batches, p.beta,
                                  p.delta, s.max_seq_length, p.loss_type)  # fmt: skip
        return float(result[0])

    def train(self, model, optimizer, done: int, recorder, guarded: Callable) -> None:
        """Steps `done + 1` to `settings.steps`: batches drawn by a generator seeded by the seed and the step
        it starts from, so a rerun from the same checkpoint trains on the same pairs."""
        import numpy as np

        s, p = self.settings, self.preference
        common = dict(batch_size=s.batch_size, iters=s.steps - done, val_batches=s.val_batches, steps_per_report=1,
                      steps_per_eval=s.steps + 1, steps_per_save=s.steps + 1, adapter_file="adapters.safetensors",
                      max_seq_length=s.max_seq_length, grad_checkpoint=s.grad_checkpoint)  # fmt: skip
        np.random.seed([s.seed, done])
        if self.method == "orpo":
            from mlx_lm_lora.trainer import orpo_trainer

            with guarded(orpo_trainer):
                orpo_trainer.train_orpo(model, optimizer, self.train_set, None,
                                        args=orpo_trainer.ORPOTrainingArgs(beta=p.beta, **common),
                                        training_callback=recorder)  # fmt: skip
            return
        from mlx_lm_lora.trainer import dpo_trainer

        args = dpo_trainer.DPOTrainingArgs(beta=p.beta, loss_type=p.loss_type, delta=p.delta, **common)
        with guarded(dpo_trainer):
            dpo_trainer.train_dpo(model, self.reference, optimizer, self.train_set, None, args=args,
                                  training_callback=recorder, loss_type=p.loss_type)  # fmt: skip
