"""quantize: a quantized node's checkpoint, its parent's weights quantized by mlx-vlm's converter (the
recipe's bits, group size, mode or mixed recipe; vision and audio towers kept), then measured against
the parent: sizes (language weights, towers, total), the parity figures on the same token ids, and
generation speed and peak memory on the same prompts. The artifact is the checkpoint itself; it is
evaluated, gated and served like a fused round (`weights_of`)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from anvil.backends import parity
from anvil.backends import quantize as backend
from anvil.errors import AnvilError
from anvil.estimates import arithmetic, first_run
from anvil.estimates.cost import Cost, weights
from anvil.evaluation.results import BenchmarkScores, SuiteScores
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.models import Recipe
from anvil.recipe.quantization import Quantize
from anvil.stages import evaluate, knowledge, source
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View
from anvil.stages.stage import Recorded, Result, Shown, Stage, StageRun, Suites, read_figures, weights_of
from anvil.state.checkpoint import sizes, weight_dtype

CODE_VERSION = 2
# Prompts for the parity and speed figures: the serving validation's, so that the page compares like with like
PROMPTS = ["What is 17 * 23?", "At what temperature do I forge iron?", "Which is better, tea or coffee?", "Thanks!"]
NEW_TOKENS = 8  # greedy continuation compared per probe
SPEED_TOKENS = 48  # generated per prompt for the speed figure


class QuantizeConfig(Strict):
    quantize: Quantize
    library: str  # mlx-vlm's version: its converter decides the bytes


def library_version() -> str:
    try:
        return f"mlx-vlm {version('mlx-vlm')}"
    except PackageNotFoundError:
        return "mlx-vlm (not installed)"


def how(spec: Quantize) -> Quantize:
    """What makes the checkpoint: the spec without its margin, which judges the result and builds nothing
    (a changed margin redraws the page, it does not quantize again)."""
    return spec.model_copy(update={"margin": Quantize.model_fields["margin"].default})


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    return [
        Node(
            id=stage_id("quantize", name),
            kind="quantize",
            config=QuantizeConfig(quantize=how(model.quantize), library=library_version()),
            needs={"parent": weights_of(recipe, model.parent)},
            code_version=CODE_VERSION,
            model=name,
            detail=model.quantize.label,
        )
        for name, model in recipe.models.items()
        if model.quantize is not None and model.parent is not None
    ]


def run(ctx: StageRun[QuantizeConfig]) -> Result:
    parent = source.checkpoint(ctx.inputs["parent"], ctx.root)
    ctx.progress(0.05, f"quantizing to {ctx.config.quantize.label}")
    try:
        backend.quantize(parent, ctx.out, ctx.config.quantize, ctx.local.logs / f"{ctx.node.id}.log")
    except (ValueError, KeyError, NotImplementedError) as e:  # what mlx-vlm says of a model it cannot quantize so
        raise AnvilError(f"mlx-vlm cannot quantize {parent.name} to {ctx.config.quantize.label}: {e}") from None
    before, after = sizes(parent), sizes(ctx.out)
    ctx.progress(0.4, "comparing logits with the parent")
    probes = parity.probe_ids(parent, [{"messages": [{"role": "user", "content": p}]} for p in PROMPTS], len(PROMPTS))
    found = backend.logits_against(parent, ctx.out, probes, NEW_TOKENS)
    ctx.progress(0.7, "generation speed and peak memory, parent then quantized")
    speeds = backend.speeds({"parent": parent, "quantized": ctx.out}, PROMPTS, SPEED_TOKENS)
    return Result.of(
        QuantizeFigures(
            label=ctx.config.quantize.label,
            parent_dtype=weight_dtype(parent),
            bytes=after,
            parent_bytes=before,
            language_ratio=after["language"] / before["language"] if before["language"] else None,
            parity=found,
            speed=speeds,
        )
    )


class QuantizeFigures(Recorded):
    """Sizes by part (`total`, `language`, ...), of the quantized model and its parent; its logits against
    the parent's; generation speed and peak memory of both (`speed`: by "parent" and "quantized")."""

    label: str
    parent_dtype: str
    bytes: dict[str, int]
    parent_bytes: dict[str, int]
    language_ratio: float | None
    parity: dict[str, Any]
    speed: dict[str, dict[str, Any]]


def figures(record: StageRecord) -> QuantizeFigures:
    return read_figures(QuantizeFigures, record)


def summary(record: StageRecord) -> str:
    m = figures(record)
    size, parent = m.bytes["total"], m.parent_bytes["total"]
    rate = ""
    if m.speed.get("parent", {}).get("tokens_per_second"):
        rate = f", {m.speed['quantized']['tokens_per_second'] / m.speed['parent']['tokens_per_second']:.2f}x tokens/s"
    return (
        f"{m.label}: {size / 1e6:.1f} MB ({size / parent:.0%} of the parent){rate}, top-1 "
        f"{m.parity['top1_agreement']:.0%} with the parent"
    )


# Converted; then parent and quantized each asked the prompts for parity (8 tokens), and for speed twice,
# interleaved, each time a warm-up pass and a measured one (48 tokens).
ASKED_TOKENS = 2 * 4 * 8 + 2 * 2 * 2 * 4 * 48


COST = Cost(
    start_s=4.0,
    unit="bytes",
    units=weights,
    first_run=lambda work, units, speed: (
        first_run.streamed(work, units, speed) + first_run.generation({}, work.shape, ASKED_TOKENS, speed, 1)
    ),
    memory=lambda work: work.shape.weight_bytes + arithmetic.OVERHEAD if work.shape else None,  # loaded whole
    weighs="parent",  # the parent's weights are what it reads, quantizes and runs beside it
)


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


def shown(record: StageRecord, recipe: Recipe, model: str) -> dict[str, Any]:
    quantize = recipe.models[model].quantize
    return figures(record).model_dump(mode="json") | {"margin": quantize.margin if quantize else None}


def eval_lines(q: dict[str, Any], report: dict[str, Any]) -> list[str]:
    """A quantized node against its parent: what it costs and buys, and the non-inferiority verdict."""
    parent = report["against"]["parent"]
    judged = verdict(*paired(report["suites"], report.get("knowledge", {})), q["margin"])
    mine, theirs = q["speed"]["quantized"], q["speed"]["parent"]
    return [
        f"quantized {q['label']} from {parent}: {q['bytes']['total'] / 1e6:.1f} MB "
        f"({q['bytes']['total'] / q['parent_bytes']['total']:.0%} of {parent}), "
        f"{mine['tokens_per_second'] / theirs['tokens_per_second']:.2f}x tokens/s, peak "
        f"{mine['peak_memory_gb'] * 1e3:.0f} MB vs {theirs['peak_memory_gb'] * 1e3:.0f} MB, top-1 "
        f"{q['parity']['top1_agreement']:.0%} with {parent}; {judged['verdict']} ({judged['why']})"
    ]


def page(config: ReportConfig, view: View) -> dict[str, Any]:
    """The shipped candidates: each quantized node against its parent, in the seed's style: size, peak memory
    and generation speed (measured on the same prompts by `run`), agreement of their logits, the quality
    deltas (suite composites and knowledge benchmarks, paired, with intervals) and the verdict."""
    rows = []
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
            m = figures(record)
            row |= {
                "bytes": m.bytes["total"],
                "parent_bytes": m.parent_bytes["total"],
                "language_ratio": m.language_ratio,
                "speed": m.speed,
                "parity": m.parity,
            }
        scored, known = stage_id("eval", model), stage_id("knowledge", model)
        suites, benchmarks = evaluate.scored(view, model), view.read(known, knowledge.results_of)
        composites, deltas = paired(suites.suites if suites else {}, benchmarks.benchmarks if benchmarks else {})
        row |= {
            "composites": [c | {"from": scored} for c in composites],
            "benchmarks": [b | {"from": known} for b in deltas],
        }
        rows.append(row | verdict(row["composites"], row["benchmarks"], notes.margin or 0.25))
    return {"shipped": rows}


STAGE = Stage(
    kind="quantize",
    code_version=CODE_VERSION,
    nodes=nodes,
    run=run,
    summary=summary,
    cost=COST,
    shown=Shown("quantized", shown, eval_lines),
    figures=QuantizeFigures,
    page=page,
)
