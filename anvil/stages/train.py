"""train: LoRA SFT of a round on its parent's full weights and its dataset (mlx-lm-lora's trainer).
Writes mlx-lm's adapter format, the loss curve and before/after samples on held-out prompts."""

from __future__ import annotations

import json
from typing import Any

from anvil.planning.graph import Node
from anvil.recipe.models import Lora, Recipe, Train
from anvil.stages.source import model_dir
from anvil.stages.stage import Stage, StageContext, weights_of

CODE_VERSION = 1


def nodes(recipe: Recipe) -> list[Node]:
    return [
        Node(
            id=f"{name}.train",
            kind="train",
            config={
                "lora": (model.lora or Lora()).model_dump(mode="json"),
                "train": (model.train or Train()).model_dump(mode="json"),
            },
            needs=(weights_of(recipe, model.parent), f"dataset.{model.dataset}"),
            code_version=CODE_VERSION,
            model=name,
        )
        for name, model in recipe.models.items()
        if model.parent is not None
    ]


def run(ctx: StageContext) -> dict[str, Any]:
    from anvil.backends import lora, samples

    model = ctx.loaded.recipe.models[ctx.node.model]
    parent_weights, dataset = (ctx.inputs[need] for need in ctx.node.needs)
    ctx.progress(0.0, "loading the parent model")
    trained, tokenizer, metrics = lora.train(
        model_dir(parent_weights),
        dataset,
        model.lora or Lora(),
        model.train or Train(),
        ctx.workdir,
        ctx.scratch,
        ctx.progress,
    )
    ctx.progress(0.99, "sampling held-out prompts")
    results, sample_metrics = samples.before_and_after(trained, tokenizer, samples.held_out(dataset))
    (ctx.workdir / "samples.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return metrics | sample_metrics


STAGE = Stage(kind="train", code_version=CODE_VERSION, nodes=nodes, run=run)
