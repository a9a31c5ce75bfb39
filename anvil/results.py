"""What a person wants to know after an apply, from the recorded state: what is served and where, each
evaluated model's composite per suite with its deltas, every gate's value and result, and the warnings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from anvil.planning.graph import Graph
from anvil.planning.record import Outcome, StageRecord
from anvil.stages import gate
from anvil.state.store import Store


def summary(records: Mapping[str, StageRecord], graph: Graph, store: Store) -> dict[str, Any]:
    served = records.get("serve")
    scores: dict[str, dict[str, dict]] = {}
    gates: dict[str, list[dict]] = {}
    for node in graph.order():
        record = records.get(node.id)
        if record is None or node.model is None:
            continue
        if node.kind == "eval":
            for suite, values in record.metrics.get("suites", {}).items():
                scores.setdefault(suite, {})[node.model] = values
        elif node.kind == "gate":
            gates[node.model] = gate.checked(store.artifact(record.fingerprint))
    return {
        "served": None if served is None else {"model": served.config.get("model"), "url": served.metrics["url"],
                                               "name": served.metrics["model"]},
        "scores": scores,
        "gates": gates,
        "warnings": {sid: r.metrics.get("warnings", []) for sid, r in records.items()
                     if r.outcome is Outcome.WARNED and sid in graph.nodes},
    }  # fmt: skip
