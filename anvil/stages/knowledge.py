"""knowledge: knowledge-preservation benchmarks (GSM8K-CoT, MMLU-Pro) of an evaluated model. Planned
from `[eval] knowledge`; this version cannot run them yet, so `plan` says so and gates on
`knowledge.*` metrics wait for them instead of passing or failing silently."""

from __future__ import annotations

from anvil.planning.graph import Node
from anvil.recipe.base import Strict
from anvil.recipe.evaluation import Knowledge
from anvil.recipe.models import Recipe
from anvil.stages.stage import Stage, Suites

CODE_VERSION = 1


class KnowledgeConfig(Strict):
    benchmarks: list[Knowledge]


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    if recipe.eval is None or not recipe.eval.knowledge:
        return []
    config = KnowledgeConfig(benchmarks=recipe.eval.knowledge)
    return [Node(f"{name}.knowledge", "knowledge", config, code_version=CODE_VERSION, available=False, model=name)
            for name in recipe.eval.compare]  # fmt: skip


STAGE = Stage(kind="knowledge", code_version=CODE_VERSION, nodes=nodes)
