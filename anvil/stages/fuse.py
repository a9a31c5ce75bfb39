"""fuse: merge a round's adapter into its parent's multimodal checkpoint (VLM-aware, shard by shard),
then verify: fused logits equal parent + adapter logits, and mlx-vlm loads the result."""

from __future__ import annotations

from typing import Any

from anvil.errors import AnvilError
from anvil.planning.graph import Node
from anvil.recipe.models import Recipe
from anvil.stages.source import model_dir
from anvil.stages.stage import Stage, StageContext, weights_of

CODE_VERSION = 1
# Largest |logit| difference accepted between parent + adapter and the fused weights. Merging in
# float32 and storing in the checkpoint's dtype leaves float rounding only (bf16: ~1e-2 on logits).
LOGIT_TOLERANCE = {"float32": 1e-3, "bfloat16": 5e-2, "float16": 5e-2}
VERIFY_PROMPTS = ["Hello! How are you today?", "What is 17 * 23?", "Tell me about forging steel."]


def nodes(recipe: Recipe) -> list[Node]:
    return [
        Node(
            id=f"{name}.fuse",
            kind="fuse",
            config={"verify_prompts": VERIFY_PROMPTS, "logit_tolerance": LOGIT_TOLERANCE},
            needs=(weights_of(recipe, model.parent), f"{name}.train"),
            code_version=CODE_VERSION,
            model=name,
        )
        for name, model in recipe.models.items()
        if model.parent is not None
    ]


def run(ctx: StageContext) -> dict[str, Any]:
    from anvil.backends import fuse

    parent_artifact, adapter = (ctx.inputs[need] for need in ctx.node.needs)
    parent = model_dir(parent_artifact)
    metrics = fuse.fuse(parent, adapter, ctx.workdir, ctx.progress)
    ctx.progress(0.9, "verifying logits")
    tolerance = LOGIT_TOLERANCE.get(fuse.weight_dtype(ctx.workdir), 5e-2)
    worst = fuse.max_logit_difference(parent, adapter, ctx.workdir, VERIFY_PROMPTS)
    if worst > tolerance:
        raise AnvilError(f"fused logits differ from parent + adapter by {worst:.2e} (tolerance {tolerance:.0e})")
    ctx.progress(0.95, "loading with mlx-vlm")
    vlm = fuse.load_vlm(ctx.workdir)
    has_vision = hasattr(vlm, "vision_tower") and vlm.vision_tower is not None
    return metrics | {"max_logit_diff": worst, "logit_tolerance": tolerance, "loads_in_mlx_vlm": True,
                      "vision_tower": has_vision}  # fmt: skip


STAGE = Stage(kind="fuse", code_version=CODE_VERSION, nodes=nodes, run=run)
