"""The dashboard's Judge section: for each suite, the judge against a person (its calibration set's
agreement figures with their intervals, the thresholds and what was missed) or a warning that it was never
checked, and the judge's own spread from repeated judgements beside the models' run-to-run spread."""

from __future__ import annotations

from typing import Any

from anvil.planning.graph import stage_id
from anvil.stages import calibration, evaluate
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.sections import eval_results
from anvil.stages.report.view import View

FIGURES = (
    ("kappa", "quadratic-weighted kappa"),
    ("spearman", "Spearman's rank correlation"),
    ("mae", "mean absolute error"),
    ("bias", "bias (judge - person)"),
)


def suites_of(view: View, config: ReportConfig) -> list[str]:
    """The suites the evaluated models were scored on, and those with a calibration stage."""
    found: dict[str, None] = {}
    for model in config.evaluated:
        record = view.built(stage_id("eval", model))
        found |= dict.fromkeys(evaluate.figures(record).suites) if record else {}
    found |= dict.fromkeys(sid.removesuffix(".calibration") for sid in view.states if sid.endswith(".calibration"))
    return list(found)


def rows(config: ReportConfig, view: View) -> list[dict[str, Any]]:
    out = []
    for suite in suites_of(view, config):
        sid = stage_id("calibration", suite)
        row: dict[str, Any] = {
            "suite": suite,
            "calibrated": sid in view.states,
            "state": view.states.get(sid),
            "from": sid,
        }
        record = view.built(sid) if sid in view.states else None
        if record is not None:
            m = calibration.figures(record)
            row |= {
                "n": m.n,
                "thresholds": m.thresholds,
                "shortfalls": m.shortfalls,
                "verdict": calibration.verdict(m),
                "figures": [{"key": key, "label": label, **getattr(m, key)} for key, label in FIGURES],
                "panel": m.panel,
            }
        row["noise"] = [
            {"model": model, **noise} for model in config.evaluated if (noise := _noise(view, model, suite))
        ]
        out.append(row)
    return out


def _noise(view: View, model: str, suite: str) -> dict[str, float] | None:
    results = eval_results(view, model)
    summary = results.suites.get(suite) if results else None
    return summary.noise.model_dump() if summary and summary.noise else None


def uncalibrated(judge_rows: list[dict[str, Any]]) -> set[str]:
    """Suites whose judge no person's scores checked: every composite of theirs carries a warning."""
    return {row["suite"] for row in judge_rows if not row["calibrated"]}
