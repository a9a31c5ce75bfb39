"""fuse: merge a round's adapter into its parent's multimodal checkpoint (VLM-aware, shard by shard),
then verify: fused logits equal parent + adapter logits, and mlx-vlm loads the result. The artifact is
the fused checkpoint itself (see `source.checkpoint`)."""

from __future__ import annotations

from anvil.errors import AnvilError
from anvil.planning.graph import Node
from anvil.planning.record import StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.models import Recipe
from anvil.stages import source
from anvil.stages.stage import Result, Stage, StageRun, Suites, weights_of

CODE_VERSION = 1
# Largest |logit| difference accepted between parent + adapter and the fused weights. Merging in
# float32 and storing in the checkpoint's dtype leaves float rounding only (bf16: ~1e-2 on logits).
LOGIT_TOLERANCE = {"float32": 1e-3, "bfloat16": 5e-2, "float16": 5e-2}
VERIFY_PROMPTS = ["Hello! How are you today?", "What is 17 * 23?", "Tell me about forging steel."]


class FuseConfig(Strict):
    verify_prompts: list[str] = VERIFY_PROMPTS
    logit_tolerance: dict[str, float] = LOGIT_TOLERANCE


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    return [
        Node(
            id=f"{name}.fuse",
            kind="fuse",
            config=FuseConfig(),
            needs={"parent": weights_of(recipe, model.parent), "adapter": f"{name}.train"},
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
    ctx.progress(0.9, "verifying logits")
    tolerance = ctx.config.logit_tolerance.get(fuse.weight_dtype(ctx.out), 5e-2)
    worst = fuse.max_logit_difference(parent, adapter, ctx.out, ctx.config.verify_prompts)
    if worst > tolerance:
        raise AnvilError(f"fused logits differ from parent + adapter by {worst:.2e} (tolerance {tolerance:.0e})")
    ctx.progress(0.95, "loading with mlx-vlm")
    vlm = fuse.load_vlm(ctx.out)
    has_vision = hasattr(vlm, "vision_tower") and vlm.vision_tower is not None
    return Result(metrics | {"max_logit_diff": worst, "logit_tolerance": tolerance, "loads_in_mlx_vlm": True,
                             "vision_tower": has_vision})  # fmt: skip


def summary(record: StageRecord) -> str:
    m = record.metrics
    return f"{m.get('merged_modules', 0)} modules merged, logits within {m.get('max_logit_diff', 0):.1e}"


STAGE = Stage(kind="fuse", code_version=CODE_VERSION, nodes=nodes, run=run, summary=summary)
