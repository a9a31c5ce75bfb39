"""The stage graph as plain values: nodes with their typed config, the stages they need (by role) and
the files they read. Built by the stages' pure `nodes(recipe, suites)` functions; no I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from anvil.errors import AnvilError


def stage_id(kind: str, owner: str | None = None) -> str:
    """The one spelling of a stage id: `dataset.<name>` for a dataset's stage, `<model>.<kind>` for a model's
    (`v2.train`), the kind alone for the project's own (`serve`, `report`). Names hold no dot (recipe/base.py)."""
    if owner is None:
        return kind
    return f"dataset.{owner}" if kind == "dataset" else f"{owner}.{kind}"


def parse_stage_id(sid: str) -> tuple[str, str | None]:
    """(kind, owner) of a stage id: the inverse of `stage_id`. The kind follows the last dot: a sweep's
    variant may hold dots (`v2(scale=0.5).train`)."""
    if sid.startswith("dataset."):
        return "dataset", sid.removeprefix("dataset.")
    head, dot, tail = sid.rpartition(".")
    return (tail, None) if not dot else (tail, head)


@dataclass(frozen=True)
class Node:
    id: str  # "dataset.behavioral", "v2.train"
    kind: str  # the stage that builds it
    config: BaseModel  # the stage's typed settings: all of it is fingerprinted, and it is exactly what `run` gets
    needs: Mapping[str, str] = field(default_factory=dict)  # role -> stage id, e.g. {"parent": "v1.fuse"}
    files: tuple[str, ...] = ()  # paths relative to the recipe's folder
    code_version: int = 1
    available: bool = True  # False: this anvil cannot build this kind of stage yet
    model: str | None = None  # model node it belongs to, for `--target v1` and `status`
    resource: bool = False  # a running process (the server), not an artifact: never restored from cache
    # How to run, never what comes out (e.g. requests at once): not fingerprinted, so changing it reruns
    # nothing. A stage must produce the same artifact whatever these are.
    options: BaseModel | None = None
    # Needs every other stage and runs after them whatever their outcome (the report): a failed gate or a
    # blocked server is something it shows, not something that stops it. Its inputs are the needs built.
    observer: bool = False
    detail: str = ""  # shown beside the stage in plans (a round's training method when it is not sft)

    @cached_property
    def settings(self) -> dict[str, Any]:
        """The config as canonical JSON values: what is fingerprinted, recorded and diffed."""
        return self.config.model_dump(mode="json")

    @property
    def deps(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.needs.values()))


@dataclass(frozen=True)
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)

    def order(self) -> list[Node]:
        """Dependencies first (post-order DFS), ties in declaration order so output is stable."""
        done: dict[str, None] = {}

        def visit(node_id: str, path: tuple[str, ...]) -> None:
            if node_id in done:
                return
            if node_id in path:
                raise AnvilError(f"stage cycle: {' -> '.join(path + (node_id,))}")
            for need in self.nodes[node_id].deps:
                visit(need, path + (node_id,))
            done[node_id] = None

        for node_id in self.nodes:
            visit(node_id, ())
        return [self.nodes[i] for i in done]

    def models(self) -> list[str]:
        """The model nodes that own stages, in stage order."""
        return list(dict.fromkeys(node.model for node in self.order() if node.model))

    def closure(self, ids: set[str]) -> set[str]:
        """The given stages and everything they need, transitively."""
        out: set[str] = set()
        todo = list(ids)
        while todo:
            node_id = todo.pop()
            if node_id not in out:
                out.add(node_id)
                todo.extend(self.nodes[node_id].deps)
        return out

    def dependents(self, ids: set[str]) -> set[str]:
        """The given stages and everything that needs them, transitively; observers (the report) excepted:
        they show what is left out rather than being left out with it."""
        out = set(ids)
        for node in self.order():
            if not node.observer and any(need in out for need in node.deps):
                out.add(node.id)
        return out

    def select(self, target: str, flag: str = "--target") -> set[str]:
        """Stage ids a `--target` (or `--exclude`) names: a stage id (`v1.train`), a model (`v1`) or a dataset name."""
        if target in self.nodes:
            return {target}
        found = {n.id for n in self.nodes.values() if n.model == target or n.id == stage_id("dataset", target)}
        if not found:
            kind, owner = parse_stage_id(target)
            owned = owner is not None and any(n.model == owner for n in self.nodes.values())
            why = f" ({owner} has no {kind} stage)" if owned else ""
            raise AnvilError(f"{flag} {target}: no such model or stage{why} (expected one of: {', '.join(self.nodes)})")
        return found
