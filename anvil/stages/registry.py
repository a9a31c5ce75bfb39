"""The stage registry: every kind of stages/kinds.py, then the report that observes them. What the planner,
the commands and the estimates ask of a stage, they ask here, by kind."""

from __future__ import annotations

from dataclasses import replace

from anvil.errors import AnvilError
from anvil.planning.graph import Graph
from anvil.planning.record import StageRecord
from anvil.recipe.models import Recipe
from anvil.stages.kinds import KINDS
from anvil.stages.report import stage as report
from anvil.stages.stage import Stage, Suites

STAGES: tuple[Stage, ...] = (*KINDS, report.STAGE)
BY_KIND = {stage.kind: stage for stage in STAGES}


def summary_of(record: StageRecord) -> str | None:
    """The figures that matter of a recorded stage (its stage's `summary`), or None; for one adopted by
    `anvil import`, where from and when first (the figures of what Anvil checked, if its kind has any)."""
    stage = BY_KIND.get(record.kind)
    try:
        own = stage.summary(record) if stage is not None and stage.summary is not None else None
        imported = record.envelope.imported_from
    except AnvilError as e:  # a record this Anvil cannot read (another version's): said, not raised
        return str(e)
    if imported:
        checked = f"; {own}" if own else ""
        return f"imported from {imported} on {record.started[:10]}{checked}"
    return own


def build_graph(recipe: Recipe, suites: Suites | None = None) -> Graph:
    """The stage graph of a recipe; `suites` are its suites as read (LoadedRecipe.suites)."""
    nodes = [node for stage in STAGES for node in stage.nodes(recipe, suites or {})]
    watched = {node.id: node.id for node in nodes if not node.observer}  # an observer needs all the others
    return Graph({node.id: replace(node, needs=watched) if node.observer else node for node in nodes})
