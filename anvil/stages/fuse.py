"""fuse: merge a round's adapter into its parent's multimodal checkpoint (VLM-aware, shard by shard),
then verify: each fused projection's outputs equal parent + adapter's, mlx-vlm loads the result, and the
round as served (mlx-vlm, the fused checkpoint) computes the function the round was trained as (mlx-lm,
parent + adapter) on held-out prompts: beyond `[parity]`'s tolerance the round is `failed`, and what needs
it is blocked. The artifact is the fused checkpoint itself (see `source.checkpoint`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from anvil.backends import fuse, parity, samples
from anvil.errors import AnvilError
from anvil.estimates import arithmetic, first_run
from anvil.estimates.cost import Cost, weights
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import Outcome, StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.models import Recipe
from anvil.recipe.preference import as_chat
from anvil.recipe.serving import Parity
from anvil.stages import dataset, source
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View
from anvil.stages.stage import Recorded, Result, Shown, Stage, StageRun, Suites, read_figures, weights_of
from anvil.state.checkpoint import layout_differences, weight_dtype

CODE_VERSION = 3  # 3: the training-against-serving check
# Largest relative difference accepted between a fused projection's outputs and parent + adapter's on
# random inputs. Merging in float32 and storing in the checkpoint's dtype leaves rounding only.
TOLERANCE = {"float32": 1e-4, "bfloat16": 2e-2, "float16": 5e-3}
METHOD = "W + scale * (A @ B).T streamed through the parent's shards; vision and audio towers kept"
TRAINING, SERVING = "mlx-lm (parent + adapter, as trained)", "mlx-vlm (the fused checkpoint, as served)"


class FuseConfig(Strict):
    tolerance: dict[str, float] = TOLERANCE
    parity: Parity = Parity()


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    return [
        Node(
            id=stage_id("fuse", name),
            kind="fuse",
            config=FuseConfig(parity=recipe.parity),
            needs={
                "parent": weights_of(recipe, model.parent),
                "adapter": stage_id("train", name),
                "dataset": stage_id("dataset", model.dataset),
            },
            code_version=CODE_VERSION,
            model=name,
        )
        for name, model in recipe.models.items()
        if model.trains and model.parent is not None
    ]


def run(ctx: StageRun[FuseConfig]) -> Result:
    parent, adapter = source.checkpoint(ctx.inputs["parent"], ctx.root), ctx.inputs["adapter"]
    metrics = fuse.fuse(parent, adapter, ctx.out, ctx.progress)
    dtype = weight_dtype(ctx.out)
    tolerance = ctx.config.tolerance.get(dtype, 2e-2)
    if metrics["max_projection_diff"] > tolerance:
        raise AnvilError(
            f"a fused projection differs from parent + adapter by {metrics['max_projection_diff']:.2e} "
            f"(tolerance {tolerance:.0e})"
        )
    return _served_as_trained(ctx, parent, adapter, metrics | {"tolerance": tolerance})


def adopt(ctx: StageRun[FuseConfig], folder: Path) -> Result:
    """A checkpoint fused outside Anvil as this round's: the parent's architecture, tensor for tensor, and
    the parity check a fuse runs (parent + adapter in training's runtime against it in serving's)."""
    parent, adapter = source.checkpoint(ctx.inputs["parent"], ctx.root), ctx.inputs["adapter"]
    if not (folder / "config.json").is_file():
        raise AnvilError(f"{folder}: not a checkpoint (no config.json; expected a fused model's folder)")
    problems = layout_differences(parent, folder)
    if problems:
        raise AnvilError(
            f"{folder}: not {ctx.node.model}'s parent with an adapter fused in:\n  " + "\n  ".join(problems)
        )
    shutil.copytree(folder, ctx.out, dirs_exist_ok=True, copy_function=shutil.copyfile)
    return _served_as_trained(ctx, parent, adapter, {})


def _served_as_trained(ctx: StageRun[FuseConfig], parent: Path, adapter: Path, metrics: dict[str, Any]) -> Result:
    """The fused checkpoint in ctx.out loads in mlx-vlm, and serves what parent + adapter compute in training."""
    dtype = weight_dtype(ctx.out)
    ctx.progress(0.9, "loading with mlx-vlm")
    vlm = fuse.load_vlm(ctx.out, lazy=True)  # every name and shape checked, no weight read
    towers = {tower: getattr(vlm, tower, None) is not None for tower in ("vision_tower", "audio_tower")}
    del vlm
    ctx.progress(0.95, "comparing training with serving")
    held_out = samples.held_out([(as_chat(row), c) for row, c in dataset.validation_rows(ctx.inputs["dataset"])])
    settings = ctx.config.parity
    probes = parity.probe_ids(parent, held_out, settings.probes)
    found = parity.compare(parent, adapter, ctx.out, probes, settings.new_tokens)
    limit = settings.max_logit_diff.get(dtype, max(settings.max_logit_diff.values()))  # type: ignore[call-overload]
    within = found["max_logit_diff"] <= limit
    found |= {"tolerance": limit, "dtype": dtype, "verdict": "within tolerance" if within else "differs"}
    if not within:
        prompt = held_out[found["worst_probe"]]["messages"][-1]["content"]
        found["message"] = (
            f"{SERVING} differs from {TRAINING}: max |logit| difference {found['max_logit_diff']:.3g} "
            f"> {limit:g} ({dtype}) on the held-out prompt {prompt[:80]!r}"
        )
    result = metrics | {"loads_in_mlx_vlm": True, **towers, "parity": found}
    recorded = FuseFigures.model_validate(result).recorded()
    return Result.judged(recorded, [] if within else [found["message"]], Outcome.FAILED)


class FuseFigures(Recorded):
    """The merge (none for an imported fuse: it was fused elsewhere), the towers mlx-vlm loaded, and the
    train/serve parity check (backends/parity.py's figures)."""

    merged_modules: int | None = None
    scale: float | None = None
    shards: int | None = None
    max_projection_diff: float | None = None
    tolerance: float | None = None
    loads_in_mlx_vlm: bool = False
    vision_tower: bool = False
    audio_tower: bool = False
    parity: dict[str, Any] | None = None


def figures(record: StageRecord) -> FuseFigures:
    return read_figures(FuseFigures, record)


def summary(record: StageRecord) -> str:
    m = figures(record)
    merged = f"{m.merged_modules or 0} modules merged, outputs within {m.max_projection_diff or 0:.1e}"
    if (p := m.parity) is None:
        return merged
    if p["verdict"] != "within tolerance":
        return p["message"]
    served = f"served = trained: max |dlogit| {p['max_logit_diff']:.1e}, top-1 {p['top1_agreement']:.0%}"
    return f"{merged}; {served}" if m.merged_modules is not None else served  # an imported fuse merged none


COST = Cost(
    start_s=1.4,
    unit="bytes",
    units=weights,
    first_run=first_run.streamed,
    memory=lambda work: arithmetic.fuse_memory(work.shape) if work.shape else None,
)


def parity_lines(p: dict[str, Any], report: dict[str, Any]) -> list[str]:
    """The round as served against the round as trained (the fuse's check), in the seed's words."""
    return [
        f"training (mlx-lm) vs serving (mlx-vlm) on {p['probes']} held-out prompts: max |logit| "
        f"difference {p['max_logit_diff']:.1e}, top-1 {100 * p['top1_agreement']:.0f}%, greedy "
        f"{100 * p['greedy_agreement']:.0f}%: {p['verdict']} (tolerance {p['tolerance']:g}, {p['dtype']})"
    ]


# the model evaluated is the model trained: its fuse's parity check
SHOWN = Shown("parity", lambda record, recipe, model: figures(record).parity, parity_lines)

PARITY = (
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


def page(config: ReportConfig, view: View) -> dict[str, Any]:
    """A row per fused round that was checked against its training (figures, tolerance, verdict), and how
    the fuse works for the page's pipeline table."""
    parity = []
    for model, m in config.models.items():
        record = view.built(stage_id("fuse", model)) if m.parent else None
        if record is not None and (found := figures(record).parity) is not None:
            parity.append({"model": model, **{key: found.get(key) for key in PARITY}, "from": record.id})
    first = view.first_built("fuse")
    shown = {"merged_modules", "max_projection_diff", "loads_in_mlx_vlm", "vision_tower"}
    how = None if first is None else {"method": METHOD, **figures(first).model_dump(include=shown)}
    return {"parity": parity, "architecture": {"fuse": how}}


STAGE = Stage(
    kind="fuse",
    code_version=CODE_VERSION,
    nodes=nodes,
    run=run,
    summary=summary,
    cost=COST,
    shown=SHOWN,
    adopt=adopt,
    figures=FuseFigures,
    page=page,
)
