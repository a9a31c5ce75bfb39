"""The dashboard's sweeps: for each swept round, every variant's settings, its training time, peak memory
and losses, its composite with the interval of its delta vs the parent, its knowledge deltas, the value
the selection compared, and the winner with the reason."""

from __future__ import annotations

from typing import Any

from anvil.planning.graph import stage_id
from anvil.stages import evaluate
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View


def rows(config: ReportConfig, view: View) -> list[dict[str, Any]]:
    out = []
    for model, notes in config.models.items():
        if not notes.variants:
            continue
        sid = stage_id("select", model)
        chosen = view.built(sid)
        values = chosen.metrics.get("values", {}) if chosen else {}
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
                m = trained.metrics
                row |= {
                    "seconds": trained.duration_s,
                    "peak_memory_gb": m.get("peak_memory_gb"),
                    "valid_loss": m.get("valid_loss_last"),
                    "train_loss": m.get("train_loss_last"),
                }
            if scored is not None:
                row["suites"] = {
                    s: {"composite": v.composite, "vs_parent": tested.model_dump() if tested else None}
                    for s, v in evaluate.figures(scored).suites.items()
                    for tested in [v.significance.get("delta_vs_parent")]
                }
            table.append(row)
        why = {k: chosen.metrics[k] for k in ("winner", "rule", "metric", "reason")} if chosen else {}
        out.append({"model": model, "state": view.states.get(sid), "from": sid, "variants": table, **why})
    return out
