"""fuse: merge a round's adapter into its parent's multimodal checkpoint (VLM-aware, shard by shard),
then verify: each fused projection's outputs equal parent + adapter's, and mlx-vlm loads the result. The artifact is
the fused checkpoint itself (see `source.checkpoint`)."""

from __future__ import annotations

from anvil.errors import AnvilError
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.models import Recipe
from anvil.stages import source
from anvil.stages.stage import Result, Stage, StageRun, Suites, weights_of
from anvil.state.checkpoint import weight_dtype

CODE_VERSION = 2
# Largest relative difference accepted between a fused projection's outputs and parent + adapter's on
# random inputs. Merging in float32 and storing in the checkpoint's dtype leaves rounding only.
TOLERANCE = {"float32": 1e-4, "bfloat16": 2e-2, "float16": 5e-3}


class FuseConfig(Strict):
    tolerance: dict[str, float] = TOLERANCE


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    return [
        Node(
            id=stage_id("fuse", name),
            kind="fuse",
            config=FuseConfig(),
            needs={"parent": weights_of(recipe, model.parent), "adapter": stage_id("train", name)},
            code_version=CODE_VERSION,
            model=name,
        )
        for name, model in recipe.models.items()
        if model.parent is not None
    ]


def run(ctx: StageRun[FuseConfig]) -> Result:
    from anvil.backends import fuse

    parent, adapter = source.checkpoint(ctx.inputs["parent"], ctx.root), ctx.inputs["adapter"]
    metrics = fuse.fuse(parent, adapter, ctx.out, ctx.progress)
    tolerance = ctx.config.tolerance.get(weight_dtype(ctx.out), 2e-2)
    if metrics["max_projection_diff"] > tolerance:
        raise AnvilError(f"a fused projection differs from parent + adapter by {metrics['max_projection_diff']:.2e} "
                         f"(tolerance {tolerance:.0e})")  # fmt: skip
    ctx.progress(0.95, "loading with mlx-vlm")
    vlm = fuse.load_vlm(ctx.out, lazy=True)  # every name and shape checked, no weight read
    has_vision = hasattr(vlm, "vision_tower") and vlm.vision_tower is not None
    return Result(metrics | {"tolerance": tolerance, "loads_in_mlx_vlm": True, "vision_tower": has_vision})


def summary(record: StageRecord) -> str:
    m = record.metrics
    return f"{m.get('merged_modules', 0)} modules merged, outputs within {m.get('max_projection_diff', 0):.1e}"


STAGE = Stage(kind="fuse", code_version=CODE_VERSION, nodes=nodes, run=run, summary=summary)
