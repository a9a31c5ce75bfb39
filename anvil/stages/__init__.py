"""The stage registry: one module per stage, listed here in pipeline order."""

from __future__ import annotations

from anvil.planning.graph import Graph
from anvil.recipe.models import Recipe
from anvil.stages import dataset, evaluate, fuse, gate, knowledge, serve, source, train
from anvil.stages.stage import Stage

STAGES: tuple[Stage, ...] = (
    dataset.STAGE, source.STAGE, train.STAGE, fuse.STAGE, evaluate.STAGE, knowledge.STAGE, gate.STAGE, serve.STAGE,
)  # fmt: skip
BY_KIND = {stage.kind: stage for stage in STAGES}


def build_graph(recipe: Recipe) -> Graph:
    nodes = [node for stage in STAGES for node in stage.nodes(recipe)]
    return Graph({node.id: node for node in nodes})
