"""The stage registry: one module per stage, listed here in pipeline order. A new stage is a module and
one entry in `STAGES`."""

from __future__ import annotations

from anvil.planning.graph import Graph
from anvil.recipe.models import Recipe
from anvil.stages import dataset, evaluate, fuse, gate, knowledge, serve, source, train, transcripts
from anvil.stages.stage import Stage, Suites

STAGES: tuple[Stage, ...] = (
    dataset.STAGE, source.STAGE, train.STAGE, fuse.STAGE, transcripts.STAGE, evaluate.STAGE, knowledge.STAGE,
    gate.STAGE, serve.STAGE,
)  # fmt: skip
BY_KIND = {stage.kind: stage for stage in STAGES}


def build_graph(recipe: Recipe, suites: Suites | None = None) -> Graph:
    """The stage graph of a recipe; `suites` are its suites as read (LoadedRecipe.suites)."""
    nodes = [node for stage in STAGES for node in stage.nodes(recipe, suites or {})]
    return Graph({node.id: node for node in nodes})
