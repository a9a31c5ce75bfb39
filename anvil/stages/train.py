"""train: LoRA SFT of a round on its parent's full weights and its dataset. Planned here; the
mlx-lm-lora runner arrives with the model-lineage work, so `plan` reports it as not available."""

from __future__ import annotations

from anvil.planning.graph import Node
from anvil.recipe.models import Lora, Recipe, Train
from anvil.stages.stage import Stage, weights_of

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
            available=False,
            model=name,
        )
        for name, model in recipe.models.items()
        if model.parent is not None
    ]


STAGE = Stage(kind="train", code_version=CODE_VERSION, nodes=nodes)
