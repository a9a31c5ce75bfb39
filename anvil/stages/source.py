"""source: a root model's weights (`hf:`, `path:` or `synthetic:`). Planned here; building arrives with
the model-lineage work, so `plan` reports it as not available instead of faking it."""

from __future__ import annotations

from anvil.planning.graph import Node
from anvil.recipe.models import Recipe
from anvil.stages.stage import Stage

CODE_VERSION = 1


def nodes(recipe: Recipe) -> list[Node]:
    out = []
    for name, model in recipe.models.items():
        if model.source is None:
            continue
        scheme, _, where = model.source.partition(":")
        out.append(
            Node(
                id=f"{name}.source",
                kind="source",
                config={"source": model.source},
                files=(where,) if scheme == "path" else (),
                code_version=CODE_VERSION,
                available=False,
                model=name,
            )
        )
    return out


STAGE = Stage(kind="source", code_version=CODE_VERSION, nodes=nodes)
