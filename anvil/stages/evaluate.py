"""eval: a model's behavioural suites, run through its own mlx-vlm server (the serving path), N runs
with their own seeds, judged, summarised; deltas against base and parent when they are compared too.

Transcripts and verdicts are kept in the stage's scratch folder as they complete, and judge calls are
cached by content: a run stopped by a failing judge finishes only what is missing next time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from anvil.errors import AnvilError
from anvil.planning.graph import Node
from anvil.recipe.models import Recipe, Serve
from anvil.recipe.suite import SuiteTest, load_suite
from anvil.stages.source import model_dir
from anvil.stages.stage import Stage, StageContext, weights_of
from anvil.state.atomic import write_json

CODE_VERSION = 1


def root_of(recipe: Recipe, model: str) -> str:
    while recipe.models[model].parent is not None:
        model = recipe.models[model].parent
    return model


def nodes(recipe: Recipe) -> list[Node]:
    if recipe.eval is None or not recipe.eval.suites:
        return []
    out = []
    config = recipe.eval.model_dump(mode="json", exclude={"compare", "knowledge"})
    kv = (recipe.serve or Serve()).kv_cache.model_dump(mode="json")
    for name in recipe.eval.compare:
        compared = [m for m in (root_of(recipe, name), recipe.models[name].parent) if m and m != name]
        needs = (weights_of(recipe, name), *dict.fromkeys(f"{m}.eval" for m in compared if m in recipe.eval.compare))
        out.append(Node(id=f"{name}.eval", kind="eval", config={**config, "kv_cache": kv}, needs=needs,
                        files=tuple(recipe.eval.suites), code_version=CODE_VERSION, model=name))  # fmt: skip
    return out


def _suites(ctx: StageContext) -> dict[str, list[SuiteTest]]:
    return {Path(s).name: load_suite(ctx.loaded.root / s, s) for s in ctx.loaded.recipe.eval.suites}


def run(ctx: StageContext) -> dict[str, Any]:
    from anvil.backends.server import free_port, running
    from anvil.evaluation.agent import converse
    from anvil.evaluation.judges import Judging
    from anvil.evaluation.scores import deltas, summarize

    settings = ctx.loaded.recipe.eval
    suites = _suites(ctx)
    todo = [(suite, test, r) for suite, tests in suites.items() for test in tests for r in range(settings.runs)]
    ctx.scratch.mkdir(parents=True, exist_ok=True)

    def saved(suite: str, test: SuiteTest, r: int) -> Path:
        return ctx.scratch / f"{suite}.{test.id}.run{r}.json"

    missing = [item for item in todo if not saved(*item).exists()]
    if missing:
        options = Serve(port=free_port(), max_tokens=settings.max_tokens, kv_cache=ctx.node.config["kv_cache"])
        folder = model_dir(ctx.inputs[ctx.node.needs[0]])
        with running(folder, options, ctx.logs / f"{ctx.node.id}.server.log") as server:
            for i, (suite, test, r) in enumerate(missing):
                ctx.progress(0.8 * i / len(missing), f"{suite}/{test.id} run {r + 1}")
                transcript = converse(server, test, seed=r, temperature=settings.temperature,
                                      max_tokens=settings.max_tokens)  # fmt: skip
                write_json(saved(suite, test, r), {"transcript": transcript})

    judging = Judging(settings.judge, ctx.cache / "judge", retries=settings.judge.retries)
    failures, results = [], {}
    for i, (suite, test, r) in enumerate(todo):
        ctx.progress(0.8 + 0.2 * i / len(todo), f"judging {suite}/{test.id} run {r + 1}")
        item = json.loads(saved(suite, test, r).read_text())
        if "verdict" not in item:
            verdict = judging(test, item["transcript"])
            if verdict.error:
                failures.append(f"{suite}/{test.id} run {r + 1}: {verdict.error}")
                continue
            item["verdict"] = {"score": verdict.score, "rationale": verdict.rationale, "cached": verdict.cached}
            write_json(saved(suite, test, r), item)
        results[(suite, test.id, r)] = item
    if failures:
        raise AnvilError("judge failures (finished tests are kept; the next apply judges only these):\n  "
                         + "\n  ".join(failures))  # fmt: skip

    compared = {need.removesuffix(".eval"): ctx.inputs[need] for need in ctx.node.needs[1:]}
    root, parent = root_of(ctx.loaded.recipe, ctx.node.model), ctx.loaded.recipe.models[ctx.node.model].parent
    summaries = {}
    for suite, tests in suites.items():
        scores = {t.id: [results[(suite, t.id, r)]["verdict"]["score"] for r in range(settings.runs)] for t in tests}
        summary = summarize(tests, scores, settings.high_variance)
        for label, other in (("delta_vs_base", root), ("delta_vs_parent", parent)):
            theirs = _summary(compared.get(other), suite) if other != ctx.node.model else None
            summary[label] = deltas(summary, theirs)
        summaries[suite] = summary
    runs = [{"suite": s, "test": t, "run": r + 1, **item} for (s, t, r), item in results.items()]
    write_json(ctx.workdir / "results.json", {"model": ctx.node.model, "suites": summaries, "runs": runs})
    return {
        "suites": {s: {"composite": v["composite"], "categories": v["categories"],
                       "delta_vs_base": (v["delta_vs_base"] or {}).get("composite"),
                       "delta_vs_parent": (v["delta_vs_parent"] or {}).get("composite"),
                       "high_variance": [t for t, x in v["tests"].items() if x["high_variance"]]}
                   for s, v in summaries.items()},
        "judge_calls": judging.calls,
        "judge_cache_hits": judging.hits,
    }  # fmt: skip


def _summary(artifact: Path | None, suite: str) -> dict | None:
    if artifact is None:
        return None
    return json.loads((artifact / "results.json").read_text())["suites"].get(suite)


STAGE = Stage(kind="eval", code_version=CODE_VERSION, nodes=nodes, run=run)
