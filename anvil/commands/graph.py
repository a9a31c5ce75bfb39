"""`anvil graph`: the stage graph as Mermaid or Graphviz dot."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from anvil.commands import command
from anvil.errors import EXIT_OK
from anvil.recipe.load import load_recipe
from anvil.stages.registry import build_graph

if TYPE_CHECKING:
    from anvil.planning.graph import Graph


def add_to(sub) -> None:
    c = command(sub, "graph", run, "print the stage graph")
    c.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")


def run(args) -> int:
    loaded = load_recipe(args.recipe)
    graph = build_graph(loaded.recipe, loaded.suites)
    print(dot(graph) if args.format == "dot" else mermaid(graph))
    return EXIT_OK


def mermaid(graph: Graph) -> str:
    lines = ["flowchart LR"]
    for node in graph.order():
        lines.append(f'  {_key(node.id)}["{node.id}"]')
        lines += [f"  {_key(need)} --> {_key(node.id)}" for need in node.deps]
    return "\n".join(lines)


def dot(graph: Graph) -> str:
    lines = ["digraph anvil {", "  rankdir=LR;"]
    for node in graph.order():
        lines.append(f'  "{node.id}";')
        lines += [f'  "{need}" -> "{node.id}";' for need in node.deps]
    return "\n".join(lines + ["}"])


def _key(stage: str) -> str:
    """A Mermaid node id: letters, digits and _ only (a sweep's variant holds parentheses, = and commas)."""
    return re.sub(r"\W", "_", stage)
