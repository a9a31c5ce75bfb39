"""The dashboard's shipped candidates: each quantized node against its parent, in the seed's style: size,
peak memory and generation speed (measured on the same prompts by stages/quantize.py), agreement of
their logits, the quality deltas (suite composites and knowledge benchmarks, paired, with intervals) and
the non-inferiority verdict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from anvil.evaluation.results import BenchmarkScores, SuiteScores
from anvil.planning.graph import stage_id
from anvil.stages import evaluate, knowledge
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.sections import read_artifact
from anvil.stages.report.view import View


def verdict(composites: list[dict[str, Any]], benchmarks: list[dict[str, Any]], margin: float) -> dict[str, str]:
    """Non-inferiority against the parent, with the intervals the rest of Anvil computes:
    `non-inferior` when every suite composite's delta has its lower 95% bound above -margin and no
    knowledge benchmark is significantly worse; `inferior` when a composite's upper bound is below -margin
    or a benchmark is significantly worse; `undecided` otherwise (an interval too wide to tell), or
    when nothing paired was measured."""
    worse = [b["benchmark"] for b in benchmarks if b.get("significant") and (b.get("delta") or 0) < 0]
    lows = [c for c in composites if c.get("ci_low") is not None]
    if worse or any(c["ci_high"] < -margin for c in lows):
        why = [
            f"{c['suite']} composite {c['delta']:+.2f} (95% CI up to {c['ci_high']:+.2f}) is below -{margin:g}"
            for c in lows
            if c["ci_high"] < -margin
        ] + [f"{name} significantly worse" for name in worse]
        return {"verdict": "inferior", "why": "; ".join(why)}
    if not lows:
        return {"verdict": "undecided", "why": "no paired evaluation against the parent yet"}
    if all(c["ci_low"] >= -margin for c in lows):
        bound = min(c["ci_low"] for c in lows)
        return {
            "verdict": "non-inferior",
            "why": f"composite delta's lower 95% bound {bound:+.2f} >= -{margin:g}"
            + (", no knowledge benchmark significantly worse" if benchmarks else ""),
        }
    return {"verdict": "undecided", "why": f"an interval reaches below -{margin:g}: more runs or tests narrow it"}


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
            m = record.metrics
            row |= {
                "bytes": m["bytes"]["total"],
                "parent_bytes": m["parent_bytes"]["total"],
                "language_ratio": m.get("language_ratio"),
                "speed": m.get("speed"),
                "parity": m.get("parity"),
            }
        composites, benchmarks = _deltas(view, model)
        row |= {"composites": composites, "benchmarks": benchmarks}
        row |= verdict(composites, benchmarks, notes.margin or 0.25)
        out.append(row)
    return out


def _deltas(view: View, model: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The model's deltas vs its parent, read from its eval and knowledge stages (`paired`)."""
    scored = read_artifact(view, stage_id("eval", model), evaluate.results_of)
    known = read_artifact(view, stage_id("knowledge", model), knowledge.results_of)
    composites, benchmarks = paired(scored.suites if scored else {}, known.benchmarks if known else {})
    return (
        [c | {"from": stage_id("eval", model)} for c in composites],
        [b | {"from": stage_id("knowledge", model)} for b in benchmarks],
    )


def paired(
    suites: Mapping[str, SuiteScores], benchmarks: Mapping[str, BenchmarkScores]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Deltas vs the parent, as `verdict` reads them: each suite's composite and each knowledge benchmark's
    score, with their intervals (`suites`: an eval's summaries; `benchmarks`: a knowledge stage's)."""
    composites, known = [], []
    for suite, summary in suites.items():
        if delta := summary.delta_vs_parent:
            tested = delta.significance.composite
            composites.append(
                {
                    "suite": suite,
                    "delta": delta.composite,
                    "ci_low": tested.ci_low,
                    "ci_high": tested.ci_high,
                    "p_value": tested.p_value,
                }
            )
    for name, b in benchmarks.items():
        if paired_items := b.delta_vs_parent:
            shown = {"delta", "ci_low", "ci_high", "p_value", "significant"}
            known.append({"benchmark": name, **paired_items.model_dump(include=shown)})
    return composites, known
