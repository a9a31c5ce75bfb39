"""knowledge: knowledge-preservation benchmarks (GSM8K-CoT, MMLU-Pro) of an evaluated model. Planned
from `[eval] knowledge`; this version cannot run them yet, so `plan` says so and gates on
`knowledge.*` metrics wait for them instead of passing or failing silently."""

from __future__ import annotations

from anvil.planning.graph import Node
from anvil.recipe.models import Recipe
from anvil.stages.stage import Stage

CODE_VERSION = 1


def nodes(recipe: Recipe) -> list[Node]:
    if recipe.eval is None or not recipe.eval.knowledge:
        return []
    config = {"benchmarks": [k.model_dump(mode="json") for k in recipe.eval.knowledge]}
    return [Node(id=f"{name}.knowledge", kind="knowledge", config=config, code_version=CODE_VERSION,
                 available=False, model=name) for name in recipe.eval.compare]  # fmt: skip


STAGE = Stage(kind="knowledge", code_version=CODE_VERSION, nodes=nodes)
