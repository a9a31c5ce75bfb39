"""The dashboard's sections, in the seed's order, each a function of the recipe's notes and a View of
the records and artifacts (report/collect.py). Missing pieces are shown as their state (pending,
running, blocked, not run), never guessed."""

from __future__ import annotations

from typing import Any

from anvil.errors import AnvilError
from anvil.evaluation.results import EvalResults
from anvil.planning.graph import stage_id
from anvil.recipe.metrics import Metric, parse_metric
from anvil.stages import evaluate, gate, knowledge, serve
from anvil.stages import fuse as fused
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View
from anvil.stages.stage import weights_kind


def weights_stage(config: ReportConfig, model: str) -> str:
    notes = config.models[model]
    return stage_id(weights_kind(bool(notes.source), bool(notes.quantize), bool(notes.variants)), model)


def model_state(config: ReportConfig, view: View, model: str) -> dict[str, Any]:
    """The most telling state of a model's stages: running (and which), failed, served, built, pending."""
    own = {sid: s for sid, s in view.states.items() if sid.startswith(f"{model}.")}
    if config.served == model and view.states.get("serve") in ("served", "running"):
        own["serve"] = view.states["serve"]
    for state in ("running", "failed"):
        found = [sid for sid, s in own.items() if s == state]
        if found:
            return {"state": state, "stage": found[0]}
    if own.get("serve") == "served":
        return {"state": "served", "stage": "serve"}
    weights = own.get(weights_stage(config, model))
    if weights in ("built", "warned"):
        return {"state": "built", "stage": weights_stage(config, model)}
    pending = [s for s in own.values() if s not in ("built", "warned")]
    return {"state": pending[0] if pending else "pending", "stage": None}


def lineage(config: ReportConfig, view: View) -> list[dict[str, Any]]:
    return [
        {
            "model": name,
            "parent": m.parent,
            "source": m.source,
            "dataset": m.dataset,
            **model_state(config, view, name),
            "from": weights_stage(config, name),
        }
        for name, m in config.models.items()
    ]


def eval_results(view: View, model: str) -> EvalResults | None:
    sid = stage_id("eval", model)
    return read_artifact(view, sid, evaluate.results_of)


def read_artifact(view: View, sid: str, reader) -> Any:
    if view.built(sid) is None or sid not in view.artifacts:
        return None
    try:
        return reader(view.artifacts[sid])
    except (OSError, ValueError, KeyError, AnvilError):  # gone or damaged: shown as missing, never guessed
        return None


def composites(config: ReportConfig, view: View) -> list[dict[str, Any]]:
    """A card per evaluated model and suite: the composite (N-run average) with its deltas, or the state."""
    cards: list[dict[str, Any]] = []
    for model in config.evaluated:
        sid, record = stage_id("eval", model), view.built(stage_id("eval", model))
        if record is None:
            waiting = [s for s in (stage_id("transcripts", model), sid) if view.states.get(s) == "running"]
            state = "running" if waiting else view.states.get(sid, "pending")
            cards.append({"model": model, "suite": None, "state": state, "runs": None, "from": sid})
            continue
        runs = record.config.get("runs")
        for suite, s in evaluate.figures(record).suites.items():
            tested = {role: s.significance.get(f"delta_vs_{role}") for role in ("base", "parent")}
            p: dict[str, Any] = {f"p_vs_{role}": t.p_value if t else None for role, t in tested.items()}
            p |= {f"sig_vs_{role}": t.significant if t else None for role, t in tested.items()}
            cards.append(
                {
                    "model": model,
                    "suite": suite,
                    "state": view.states[sid],
                    "runs": runs,
                    "composite": s.composite,
                    "delta_vs_base": s.delta_vs_base,
                    "delta_vs_parent": s.delta_vs_parent,
                    **p,
                    "from": sid,
                }
            )
    return cards


def gate_failures(view: View, model: str) -> list[dict[str, Any]]:
    """A model's failed gates with the test's category and the judge's rationale for its lowest run."""
    checked = read_artifact(view, stage_id("gate", model), gate.checked) or []
    results = eval_results(view, model) or EvalResults(suites={})
    rows = []
    for g in (g for g in checked if not g["passed"]):
        parsed = parse_metric(g["metric"]) or Metric("", "")
        suite, kind, name = parsed.source, parsed.kind, parsed.name
        scores = results.suites.get(suite)
        test = scores.tests.get(name) if scores and kind == "test" else None
        worst = min(results.runs_of(suite, name) if test else [], key=lambda r: r.verdict.score, default=None)
        category = test.category if test else (name if kind == "category" else None)
        rows.append(
            {
                "metric": g["metric"],
                "test": name if test else None,
                "value": g["value"],
                "min": g["min"],
                "max": g["max"],
                "category": category,
                "from": stage_id("gate", model),
                "rationale": worst.verdict.rationale if worst else None,
            }
        )
    return rows


def gates(config: ReportConfig, view: View) -> list[dict[str, Any]]:
    out = []
    for model in config.evaluated:
        sid = stage_id("gate", model)
        if sid not in view.states:
            continue
        checked = read_artifact(view, sid, gate.checked)
        out.append(
            {
                "model": model,
                "state": view.states[sid],
                "gates": checked,
                "failures": gate_failures(view, model),
                "from": sid,
            }
        )
    return out


def categories(config: ReportConfig, view: View) -> list[dict[str, Any]]:
    """Category scores per model and suite, with deltas vs base and parent and their p-values."""
    out = []
    for model in config.evaluated:
        results = eval_results(view, model)
        for suite, s in (results.suites if results else {}).items():
            rows = []
            for name, score in s.categories.items():
                row: dict[str, Any] = {"category": name, "score": score}
                for role in ("base", "parent"):
                    delta = s.delta(role)
                    tested = delta.significance.categories.get(name) if delta else None
                    row[f"delta_vs_{role}"] = delta.categories.get(name) if delta else None
                    row[f"p_vs_{role}"] = tested.p_shown if tested else None
                    row[f"sig_vs_{role}"] = bool(tested and tested.significant)
                rows.append(row)
            out.append({"model": model, "suite": suite, "rows": rows, "from": stage_id("eval", model)})
    return out


def high_variance(config: ReportConfig, view: View) -> list[dict[str, Any]]:
    rows = []
    for model in config.evaluated:
        results = eval_results(view, model)
        for suite, s in (results.suites if results else {}).items():
            rows += [
                {
                    "model": model,
                    "suite": suite,
                    "test": test,
                    "category": t.category,
                    "runs": t.runs,
                    "mean": t.mean,
                    "std": t.std,
                    "from": stage_id("eval", model),
                }
                for test, t in s.tests.items()
                if t.high_variance
            ]
    return rows


def serving(config: ReportConfig, view: View) -> dict[str, Any] | None:
    if config.served is None:
        return None
    record, state = view.records.get("serve"), view.states.get("serve", "pending")
    if record is None or state not in ("served", "warned"):
        held = view.states.get(stage_id("gate", config.served)) == "failed"
        return {"model": config.served, "state": "held back: gates failed" if held else state, "from": "serve"}
    m, kv = serve.served(record), record.config.get("kv_cache", {})
    return {
        "model": config.served,
        "state": state,
        "url": m.url,
        "name": m.model,
        "kv_cache": kv,
        "prompts": m.validation_prompts,
        "agreement": m.validation_agreement,
        "kv_agreement": m.kv_validation_agreement,
        "warnings": m.warnings,
        "startup_s": m.startup_s,
        "from": "serve",
    }


def knowledge_rows(config: ReportConfig, view: View) -> list[dict[str, Any]]:
    """Per model and benchmark: n, score and, against base and parent, their score, the delta, p and CI."""
    rows = []
    for model in config.evaluated:
        sid = stage_id("knowledge", model)
        if sid not in view.states:
            continue
        found = read_artifact(view, sid, knowledge.results_of)
        if found is None:
            rows.append({"model": model, "state": view.states[sid], "from": sid})
            continue
        for name, b in found.benchmarks.items():
            shown = {"score", "delta", "p_value", "ci_low", "ci_high", "significant", "alpha"}
            against = {role: d.model_dump(include=shown) for role in ("base", "parent") if (d := b.delta(role))}
            row: dict[str, Any] = {
                "model": model,
                "state": view.states[sid],
                "benchmark": name,
                "title": b.title,
                "filter": b.filter,
                "n": b.n,
                "score": b.score,
                "stderr": b.stderr,
                "groups": {group: share.model_dump() for group, share in b.groups.items()},
                "lm_eval_task": b.lm_eval_task,
                "overlaps_training": b.overlaps_training,
                "from": sid,
            }
            rows.append(row | against)
    return rows


def architecture(config: ReportConfig, view: View) -> dict[str, Any]:
    fuse, scored, generated = view.first_built("fuse"), view.first_built("eval"), view.first_built("transcripts")
    serve = view.records.get("serve")
    return {
        "packages": view.environment.get("packages"),
        "machine": view.environment.get("machine"),
        "fuse": None
        if fuse is None
        else {
            "method": "W + scale * (A @ B).T streamed through the parent's shards; vision and audio towers kept",
            **fused.figures(fuse).model_dump(
                include={"merged_modules", "max_projection_diff", "loads_in_mlx_vlm", "vision_tower"}
            ),
        },
        "judge": None if scored is None else {**scored.config["judge"], "runs": scored.config.get("runs")},
        "eval_kv_cache": None if generated is None else generated.config.get("kv_cache"),
        "serve_kv_cache": None if serve is None else serve.config.get("kv_cache"),
    }
