"""select: a sweep's winner. Once every variant of a swept round is evaluated, the round's `select` rule
picks one: `best` (the highest value of the metric; between equal values the simplest variant, or the
first), or `simplest_within_noise` (the simplest variant whose paired delta against the best is not
significantly negative, Holm-adjusted across the variants). Why is recorded, with every variant's value.
The artifact is the winner's checkpoint (hard links to its fuse's files), so the round's name means the
winner to everything that needs its weights: its children, its quantized nodes, the server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from anvil.errors import AnvilError
from anvil.evaluation import stats
from anvil.evaluation.scores import deltas, metric
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.metrics import KNOWLEDGE, parse_metric
from anvil.recipe.models import Recipe
from anvil.recipe.sweep import Select, simplicity, variants
from anvil.stages import evaluate, knowledge, train
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View
from anvil.stages.stage import Recorded, Result, Stage, StageRun, Suites, artifact_json, read_figures
from anvil.state.atomic import write_json

CODE_VERSION = 1
ARTIFACT = "select.json"


class SelectConfig(Strict):
    select: Select
    variants: dict[str, dict[str, Any]]  # name -> the settings it sets, in the matrix's order
    alpha: float = 0.05


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    out = []
    for name, model in recipe.models.items():
        if model.select is None:
            continue
        swept = variants(name, model)
        knowledge = model.select.metric.startswith("knowledge.")
        needs = {f"weights:{v}": stage_id("fuse", v) for v in swept}
        needs |= {f"results:{v}": stage_id("knowledge" if knowledge else "eval", v) for v in swept}
        config = SelectConfig(select=model.select, variants=swept, alpha=recipe.eval.alpha if recipe.eval else 0.05)
        out.append(
            Node(
                stage_id("select", name),
                "select",
                config,
                needs=needs,
                code_version=CODE_VERSION,
                model=name,
                detail=f"{len(swept)} variants",
            )
        )
    return out


def choose(config: SelectConfig, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The winner and why, from each variant's results (an eval's `suites` or a knowledge stage's
    `benchmarks`); pure, so that the rule is tested without a model."""

    path = config.select.metric
    values = {}
    for name, found in results.items():
        value = metric(found.get("suites", {}), path, found.get("benchmarks"))
        if value is None:
            raise AnvilError(f"{name} has no {path} in its results (expected every variant evaluated on it)")
        values[name] = value
    order = list(config.variants)
    rank = (lambda v: simplicity(config.variants[v])) if config.select.tie == "simplest" else order.index
    best_value = max(values.values())
    best = min((v for v in order if values[v] == best_value), key=rank)
    table: list[dict[str, Any]] = [{"variant": v, "settings": config.variants[v], "value": values[v]} for v in order]
    if config.select.rule == "best":
        tied = [v for v in order if values[v] == best_value]
        why = f"highest {path}: {best_value:.3f}"
        why += f" (tied with {len(tied) - 1}; the {config.select.tie})" if len(tied) > 1 else ""
        return {"winner": best, "rule": "best", "metric": path, "reason": why, "variants": table}
    parsed = parse_metric(path)
    suite = parsed.source if parsed is not None else ""
    against = {
        v: deltas(results[v]["suites"][suite], results[best]["suites"][suite], config.alpha) for v in order if v != best
    }
    adjusted = stats.holm({v: d.significance.composite.p_value for v, d in against.items() if d})
    for row in table:
        d = against.get(row["variant"])
        row |= {"delta_vs_best": None if d is None else d.composite, "p_holm": adjusted.get(row["variant"])}

    def worse(v: str) -> bool:
        d = against.get(v)
        if d is None or d.composite >= 0:
            return False
        # lower by the same amount on every test: no noise for it to be within
        alike = d.significance.composite.reason == stats.ALIKE
        return alike or stats.significant(adjusted.get(v), config.alpha)

    within = [v for v in order if v == best or not worse(v)]
    winner = min(within, key=lambda v: simplicity(config.variants[v]))
    why = (
        f"simplest of {len(within)} variant(s) not significantly worse than the best ({best}, {path} "
        f"{best_value:.3f}; paired over the suite's tests, Holm-adjusted, alpha {config.alpha:g})"
    )
    return {
        "winner": winner,
        "rule": "simplest_within_noise",
        "metric": path,
        "reason": why,
        "best": best,
        "variants": table,
    }


def run(ctx: StageRun[SelectConfig]) -> Result:
    results = {name: found_in(ctx.inputs[f"results:{name}"], ctx.config.select.metric) for name in ctx.config.variants}
    chosen = choose(ctx.config, results)
    _link_tree(ctx.inputs[f"weights:{chosen['winner']}"], ctx.out)
    write_json(ctx.out / ARTIFACT, chosen)
    values = {row["variant"]: row["value"] for row in chosen["variants"]}
    figures = Chosen(**{k: chosen[k] for k in ("winner", "rule", "metric", "reason")}, values=values)
    return Result(figures.recorded(), passes_on=f"weights:{chosen['winner']}")


def _link_tree(source: Path, out: Path) -> None:
    """The winner's checkpoint in `out`, file by file: a hard link (artifacts never change), a copy where
    the store spans file systems."""
    for folder, _, files in os.walk(source):
        target = out / Path(folder).relative_to(source)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            try:
                os.link(Path(folder, name), target / name)
            except OSError:
                shutil.copy2(Path(folder, name), target / name)


def found_in(artifact: Path, path: str) -> dict[str, Any]:
    """A variant's results that `path` is read from: an eval's {"suites": ...} or a knowledge stage's
    {"benchmarks": ...}."""
    parsed = parse_metric(path)
    if parsed is not None and parsed.source == KNOWLEDGE:
        return {"benchmarks": knowledge.results_of(artifact).benchmarks}
    return {"suites": evaluate.results_of(artifact).suites}


def results_of(artifact: Path) -> dict[str, Any]:
    return artifact_json(artifact, ARTIFACT)


class Chosen(Recorded):
    """The winner, the rule and metric it was chosen by and why, and each variant's value of the metric."""

    winner: str
    rule: str
    metric: str
    reason: str
    values: dict[str, float]


def figures(record: StageRecord) -> Chosen:
    return read_figures(Chosen, record)


def summary(record: StageRecord) -> str:
    m = figures(record)
    return f"winner {m.winner}: {m.reason}"


def page(config: ReportConfig, view: View) -> dict[str, Any]:
    """Each swept round: every variant's settings, its training time, peak memory and losses, its composite
    with the interval of its delta vs the parent, the value the selection compared, and the winner with why."""
    sweeps = []
    for model, notes in config.models.items():
        if not notes.variants:
            continue
        sid = stage_id("select", model)
        chosen = view.built(sid)
        picked = figures(chosen) if chosen else None
        values = picked.values if picked else {}
        rows = [_variant(view, variant, values.get(variant), sid) for variant in notes.variants]
        why = picked.model_dump(include={"winner", "rule", "metric", "reason"}) if picked else {}
        sweeps.append({"model": model, "state": view.states.get(sid), "from": sid, "variants": rows, **why})
    return {"sweeps": sweeps}


def _variant(view: View, variant: str, value: float | None, sid: str) -> dict[str, Any]:
    trained, scored = view.built(stage_id("train", variant)), view.built(stage_id("eval", variant))
    row: dict[str, Any] = {
        "variant": variant,
        "value": value,
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
            suite: {"composite": v.composite, "vs_parent": tested.model_dump() if tested else None}
            for suite, v in evaluate.figures(scored).suites.items()
            for tested in [v.significance.get("delta_vs_parent")]
        }
    return row


STAGE = Stage(
    kind="select",
    code_version=CODE_VERSION,
    nodes=nodes,
    run=run,
    summary=summary,
    in_plan=True,
    figures=Chosen,
    page=page,
)
