"""The dashboard's training rounds: each one's data mix, training settings and loss curve, and what it
targets in its parent (failed gates, or the weakest tests), from a View of the records and artifacts."""

from __future__ import annotations

import json
from typing import Any

from anvil.errors import AnvilError
from anvil.evaluation.results import EvalResults
from anvil.methods.registry import METHODS, settings_in
from anvil.planning.graph import stage_id
from anvil.recipe.metrics import Metric
from anvil.stages import dataset, source
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.sections import eval_results, gate_failures, read_artifact, weights_stage
from anvil.stages.report.view import View
from anvil.stages.train import figures
from anvil.state.checkpoint import weight_dtype


def round_of(config: ReportConfig, view: View, model: str) -> dict[str, Any]:
    """A training round: its data mix, its training parameters and loss curve, and what it targets."""
    m = config.models[model]
    assert m.parent is not None and m.dataset is not None
    notes = config.datasets.get(m.dataset)
    data_sid, train_sid = stage_id("dataset", m.dataset), stage_id("train", model)
    manifest = read_artifact(view, data_sid, dataset.manifest)
    categories = []
    for name, counts in (manifest or {}).get("categories", {}).items():
        note = notes.categories.get(name) if notes else None
        categories.append(
            {
                "name": name,
                "rows": counts["rows"],
                "train": counts["train"],
                "valid": counts["valid"],
                "description": note.description if note else None,
                "addresses": (note.addresses or [name]) if note else [name],
            }
        )
    curve = read_artifact(view, train_sid, lambda folder: json.loads((folder / "loss.json").read_text()))
    curve = curve or view.curves.get(train_sid) or {"train": [], "valid": []}
    return {
        "model": model,
        "parent": m.parent,
        "dataset": {
            "name": m.dataset,
            "description": notes.description if notes else None,
            "rows": (manifest or {}).get("rows"),
            "state": view.states.get(data_sid, "pending"),
            "categories": categories,
            "from": data_sid,
        },
        "training": training(config, view, model),
        "loss": {
            **curve,
            "table": loss_table(curve),
            "state": view.states.get(train_sid, "pending"),
            "from": train_sid,
        },
        "targets": targets(config, view, model, categories),
    }


def loss_table(curve: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """The curve at its validation steps, its first and its last step: train and valid loss side by side."""
    train = {p["step"]: p["loss"] for p in curve["train"]}
    valid = {p["step"]: p["loss"] for p in curve["valid"]}
    ends = {min(train), max(train)} if train else set()
    return [{"step": step, "train": train.get(step), "valid": valid.get(step)} for step in sorted(set(valid) | ends)]


def training(config: ReportConfig, view: View, model: str) -> dict[str, Any]:
    """The seed's training-parameters table, from the train record and the parent's weights."""
    sid = stage_id("train", model)
    record = view.records.get(sid)
    if record is None:
        return {"state": view.states.get(sid, "pending"), "from": sid}
    parent = config.models[model].parent
    assert parent is not None
    facts = _weights_facts(view, weights_stage(config, parent))
    lora, train, trained = record.config["lora"], record.config["train"], figures(record)
    metrics = trained.model_dump()  # the method's own figures among them, for its dashboard rows
    return {
        "state": view.states.get(sid, "pending"),
        "from": sid,
        "base": {"model": parent, "fused": config.models[parent].parent is not None, **facts},
        "rank": lora["rank"],
        "scale": lora["scale"],
        "last_layers": lora["last_layers"],
        "targets": lora["targets"],
        "trainable_parameters": trained.trainable_parameters,
        "total_parameters": trained.total_parameters,
        "trainable_percent": trained.trainable_percent,
        "steps": train["steps"],
        "batch_size": train["batch_size"],
        "learning_rate": train["learning_rate"],
        "max_seq_length": train["max_seq_length"],
        "grad_checkpoint": train["grad_checkpoint"],
        **_method_rows(record.config.get("method", "sft"), settings_in(record.config), metrics),
        "peak_memory_gb": trained.peak_memory_gb,
        "seconds_per_step": trained.seconds_per_step,
        "duration_s": record.duration_s if view.built(sid) else None,
        # adopted by `anvil import`: trained elsewhere, so no curve or time of its own
        "imported": {"from": trained.imported_from, "on": record.started[:10]} if trained.imported_from else None,
    }


def _method_rows(method: str, settings: dict | None, metrics: dict) -> dict[str, Any]:
    """What the round's method shows: its name, its settings and figures (empty for sft's margins)."""
    rows = {
        "method": method,
        "beta": None,
        "margin_before": None,
        "margin_after": None,
        "accuracy_before": None,
        "accuracy_after": None,
    }
    return rows | METHODS[method].dashboard(settings, metrics)


def _weights_facts(view: View, sid: str) -> dict[str, Any]:
    """Layers, dtype and size of a built checkpoint; {} when it cannot be read (a Hub cache cleared)."""
    if view.built(sid) is None or sid not in view.artifacts:
        return {}
    try:
        folder = source.checkpoint(view.artifacts[sid], view.root)
        config = json.loads((folder / "config.json").read_text())
        dtype = weight_dtype(folder)
    except (AnvilError, OSError, ValueError):
        return {}
    layers = config.get("text_config", config).get("num_hidden_layers")
    size = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    return {"layers": layers, "dtype": dtype, "bytes": size, "from": sid}


WEAKEST = 3  # a parent without failed gates: its lowest-scoring tests, and every high-variance one


def targets(config: ReportConfig, view: View, model: str, categories: list[dict]) -> dict[str, Any] | None:
    """The seed's "what v2 targets": each failure of the parent's gates, or, when the parent failed none
    (or has no gates), its weakest tests (lowest scores, highest variance), beside the category of this
    round's data that addresses it (by its `addresses`: a suite category or a test id)."""
    parent = config.models[model].parent
    if parent is None:
        return None
    if view.states.get(stage_id("gate", parent)) == "failed":
        kind, rows = "gate failures", gate_failures(view, parent)
    else:
        kind, rows = "weakest tests", _weakest(view, parent)
    if not rows:
        return None
    for row in rows:
        wanted = {row["test"], row["category"]} - {None}
        row["addressed_by"] = [c["name"] for c in categories if wanted & set(c["addresses"])]
    return {"kind": kind, "rows": rows}


def _weakest(view: View, model: str) -> list[dict[str, Any]]:
    """A model's lowest-scoring tests and its high-variance ones, lowest first, with the judge's rationale
    for the lowest run."""
    results = eval_results(view, model) or EvalResults(suites={})
    tests = [(suite, test_id, t) for suite, s in results.suites.items() for test_id, t in s.tests.items()]
    lowest = sorted(tests, key=lambda x: x[2].mean)[:WEAKEST]
    chosen = lowest + [x for x in tests if x[2].high_variance and x not in lowest]
    rows = []
    for suite, test_id, t in sorted(chosen, key=lambda x: x[2].mean):
        worst = min(results.runs_of(suite, test_id), key=lambda r: r.verdict.score, default=None)
        reasons = (("low score", (suite, test_id, t) in lowest), ("high variance", t.high_variance))
        why = [w for w, yes in reasons if yes]
        rows.append(
            {
                "metric": str(Metric(suite, "test", test_id)),
                "test": test_id,
                "value": t.mean,
                "std": t.std,
                "category": t.category,
                "why": ", ".join(why),
                "rationale": worst.verdict.rationale if worst else None,
                "from": stage_id("eval", model),
            }
        )
    return rows
