"""The dashboard's data: every section of the page as plain JSON values, read from stage records and
artifacts. One function for both callers: the report stage (its inputs, all built) and the live page
(the project's state while an apply runs). Every figure carries `from`, the stage it was read from;
`sources` maps each stage to its fingerprint, so a reader can trace any number with `anvil status`."""

from __future__ import annotations

from typing import Any

from anvil.stages.report import judge, parity, rounds, sections, shipped, sweeps
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View

FORMAT = 1


def dashboard(config: ReportConfig, view: View) -> dict[str, Any]:
    judged = judge.rows(config, view)
    unchecked = judge.uncalibrated(judged)
    return {
        "format": FORMAT,
        "project": config.project,
        "template": config.template,
        "live": view.live,
        "lineage": sections.lineage(config, view),
        "composites": [
            card | {"uncalibrated": card["suite"] in unchecked} for card in sections.composites(config, view)
        ],
        "judge": judged,
        "rounds": [
            rounds.round_of(config, view, model) for model, m in config.models.items() if m.dataset and not m.variants
        ],  # a swept round's rounds are its variants'
        "sweeps": sweeps.rows(config, view),
        "gates": sections.gates(config, view),
        "categories": sections.categories(config, view),
        "high_variance": sections.high_variance(config, view),
        "serving": sections.serving(config, view),
        "parity": parity.rows(config, view),
        "served": parity.served(view),
        "shipped": shipped.rows(config, view),
        "knowledge": sections.knowledge_rows(config, view),
        "architecture": sections.architecture(config, view),
        "sources": {
            sid: {
                "kind": record.kind,
                "fingerprint": record.fingerprint,
                "state": view.states.get(sid),
                "started": record.started,
                "duration_s": record.duration_s,
                "tokens_per_s": record.metrics.get("tokens_per_s"),  # of the stages that generate
            }
            for sid, record in sorted(view.records.items())
            if sid in view.states
        },
    }
