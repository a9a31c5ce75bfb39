"""The dashboard's sweeps: for each swept round, every variant's settings, its training time, peak memory
and losses, its composite with the interval of its delta vs the parent, its knowledge deltas, the value
the selection compared, and the winner with the reason."""

from __future__ import annotations

from typing import Any

from anvil.planning.graph import stage_id
from anvil.stages import evaluate, select, train
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View


def rows(config: ReportConfig, view: View) -> list[dict[str, Any]]:
    out = []
    for model, notes in config.models.items():
        if not notes.variants:
            continue
        sid = stage_id("select", model)
        chosen = view.built(sid)
        picked = select.figures(chosen) if chosen else None
        values = picked.values if picked else {}
        table = []
        for variant in notes.variants:
            trained, scored = view.built(stage_id("train", variant)), view.built(stage_id("eval", variant))
            row: dict[str, Any] = {
                "variant": variant,
                "value": values.get(variant),
                "state": view.states.get(stage_id("train", variant)),
                "from": sid,
            }
            if trained is not None:
                m = train.figures(trained)
                row |= {
                    "seconds": trained.duration_s,
                    "peak_memory_gb": m.peak_memory_gb,
                    "valid_loss": m.valid_loss_last,
                    "train_loss": m.train_loss_last,
                }
            if scored is not None:
                row["suites"] = {
                    s: {"composite": v.composite, "vs_parent": tested.model_dump() if tested else None}
                    for s, v in evaluate.figures(scored).suites.items()
                    for tested in [v.significance.get("delta_vs_parent")]
                }
            table.append(row)
        why = picked.model_dump(include={"winner", "rule", "metric", "reason"}) if picked else {}
        out.append({"model": model, "state": view.states.get(sid), "from": sid, "variants": table, **why})
    return out
