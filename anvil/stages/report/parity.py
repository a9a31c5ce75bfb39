"""The dashboard's serving checks: each round's training-against-serving check after its fuse
(stages/fuse.py), and the served model's one run against its evaluation (stages/serving.py), the seed's
"within noise" question."""

from __future__ import annotations

from typing import Any

from anvil.planning.graph import stage_id
from anvil.stages import fuse, serving
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View

FIGURES = (
    "probes",
    "max_logit_diff",
    "mean_logit_diff",
    "top1_agreement",
    "greedy_agreement",
    "tolerance",
    "dtype",
    "verdict",
    "message",
)


def rows(config: ReportConfig, view: View) -> list[dict[str, Any]]:
    """A row per fused round that was checked: its figures, the tolerance and the verdict."""
    out = []
    for model, m in config.models.items():
        sid = stage_id("fuse", model)
        record = view.built(sid) if m.parent else None
        if record is not None and (found := fuse.figures(record).parity) is not None:
            out.append({"model": model, **{k: found.get(k) for k in FIGURES}, "from": sid})
    return out


def served(view: View) -> list[dict[str, Any]]:
    """A row per suite: the served model's 1-run composite, the evaluation's, each of its runs' and the
    tests that drive the gap."""
    record = view.built("serving")
    if record is None:
        return []
    return [
        {"suite": suite, "model": record.config.get("model"), **found, "from": "serving"}
        for suite, found in serving.figures(record).suites.items()
    ]
