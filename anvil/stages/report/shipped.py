"""The dashboard's shipped candidates: each quantized node against its parent, in the seed's style: size,
peak memory and generation speed (measured on the same prompts by stages/quantize.py), agreement of
their logits, the quality deltas (suite composites and knowledge benchmarks, paired, with intervals) and
the non-inferiority verdict."""

from __future__ import annotations

from typing import Any

from anvil.planning.graph import stage_id
from anvil.stages import evaluate, knowledge, quantize
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.sections import read_artifact
from anvil.stages.report.view import View


def rows(config: ReportConfig, view: View) -> list[dict[str, Any]]:
    out = []
    for model, notes in config.models.items():
        if notes.quantize is None:
            continue
        sid = stage_id("quantize", model)
        record = view.built(sid)
        row: dict[str, Any] = {
            "model": model,
            "parent": notes.parent,
            "method": notes.quantize,
            "state": view.states.get(sid),
            "from": sid,
        }
        if record is not None:
            m = quantize.figures(record)
            row |= {
                "bytes": m.bytes["total"],
                "parent_bytes": m.parent_bytes["total"],
                "language_ratio": m.language_ratio,
                "speed": m.speed,
                "parity": m.parity,
            }
        composites, benchmarks = _deltas(view, model)
        row |= {"composites": composites, "benchmarks": benchmarks}
        row |= quantize.verdict(composites, benchmarks, notes.margin or 0.25)
        out.append(row)
    return out


def _deltas(view: View, model: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The model's deltas vs its parent, read from its eval and knowledge stages (`paired`)."""
    scored = read_artifact(view, stage_id("eval", model), evaluate.results_of)
    known = read_artifact(view, stage_id("knowledge", model), knowledge.results_of)
    composites, benchmarks = quantize.paired(scored.suites if scored else {}, known.benchmarks if known else {})
    return (
        [c | {"from": stage_id("eval", model)} for c in composites],
        [b | {"from": stage_id("knowledge", model)} for b in benchmarks],
    )
