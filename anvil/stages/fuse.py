"""fuse: merge a round's adapter into its parent's multimodal checkpoint. Planned here; the VLM-aware
merge arrives with the model-lineage work, so `plan` reports it as not available."""

from __future__ import annotations

from anvil.planning.graph import Node
from anvil.recipe.models import Recipe
from anvil.stages.stage import Stage, weights_of

CODE_VERSION = 1


def nodes(recipe: Recipe) -> list[Node]:
    return [
        Node(
            id=f"{name}.fuse",
            kind="fuse",
            config={},
            needs=(weights_of(recipe, model.parent), f"{name}.train"),
            code_version=CODE_VERSION,
            available=False,
            model=name,
        )
        for name, model in recipe.models.items()
        if model.parent is not None
    ]


STAGE = Stage(kind="fuse", code_version=CODE_VERSION, nodes=nodes)
