"""`anvil eval show MODEL [TEST]`: a model's scores per suite (tests, categories, composite, deltas with
their significance) and its knowledge benchmarks, or one test's transcripts with the judge's rationales."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from anvil.commands import DEFAULT_RECIPE, Parser, open_project
from anvil.console import fitted
from anvil.errors import EXIT_OK, AnvilError
from anvil.evaluation.agent import render
from anvil.planning.graph import stage_id
from anvil.stages import calibration, evaluate, knowledge, serve
from anvil.stages.report import shipped

if TYPE_CHECKING:
    from rich.console import Console

    from anvil.project import Project


def add_to(sub) -> None:
    c = sub.add_parser("eval", help="evaluation results").add_subparsers(
        dest="eval_command", required=True, parser_class=Parser
    )
    c = c.add_parser("show", help="scores of a model, or one test's transcripts and rationales")
    c.set_defaults(run=run)
    c.add_argument("model", help="an evaluated model node, e.g. v2")
    c.add_argument("test", nargs="?", help="a test id: show its transcripts and the judge's rationales")
    c.add_argument("--recipe", default=DEFAULT_RECIPE, help="recipe file (default: anvil.toml)")
    c.add_argument("--json", action="store_true", help="the whole results file")


def run(args) -> int:
    report = eval_results(open_project(args.recipe), args.model)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        fitted(lambda console: eval_table(report, args.test, console))
    return EXIT_OK


def eval_results(project: Project, model: str) -> dict[str, Any]:
    """A model's suite results and knowledge results, with the names of the models it is compared with."""
    records = project.state.load()
    scored, known = records.get(stage_id("eval", model)), records.get(stage_id("knowledge", model))
    if scored is None and known is None:
        evaluated = [
            m
            for m in project.graph.models()
            if {stage_id("eval", m), stage_id("knowledge", m)} & set(project.graph.nodes)
        ]
        raise AnvilError(
            f"{model} has no evaluation results (evaluated models: {', '.join(evaluated) or 'none'}; "
            "run `anvil apply` first)"
        )
    recipe = project.loaded.recipe
    against = {"base": recipe.root_of(model), "parent": recipe.models[model].parent}
    standing = project.standings()
    stale = {
        sid: standing[sid].stale for sid in (stage_id("eval", model), stage_id("knowledge", model)) if sid in standing
    }
    results: dict[str, Any] = {"model": model, "against": against, "suites": {}, "runs": []}
    results["not_current"] = {sid: label for sid, label in stale.items() if label}
    if scored is not None:
        results |= evaluate.results_of(project.store.artifact(scored.fingerprint))
        results["calibration"] = {
            suite: records[sid].metrics if sid in records else None
            for suite, sid in calibration.calibrated_suites(recipe, project.loaded.suites).items()
        }
    if known is not None:
        results["knowledge"] = knowledge.results_of(project.store.artifact(known.fingerprint))["benchmarks"]
    if (fused := records.get(stage_id("fuse", model))) is not None and "parity" in fused.metrics:
        results["parity"] = fused.metrics["parity"]  # the model evaluated is the model trained
    if (made := records.get(stage_id("quantize", model))) is not None:
        results["quantized"] = made.metrics | {"margin": recipe.models[model].quantize.margin}  # type: ignore[union-attr]
    if (served := records.get("serve")) is not None and served.config.get("model") == model:
        results["served"] = serve.figures(served)  # ... and the model served
    return results


def eval_table(report: dict, test: str | None, console: Console) -> None:
    """Scores per suite (tests, categories, composite, deltas), or one test's runs in full."""
    if test is not None:
        runs = [r for r in report["runs"] if r["test"] == test]
        if not runs:
            known = sorted({r["test"] for r in report["runs"]})
            raise AnvilError(f"no test {test!r} in {report['model']}'s results (expected one of: {', '.join(known)})")

        for r in runs:
            v = r["verdict"]
            console.print(f"[bold]{r['suite']}/{test} run {r['run']}: score {v['score']:.2f}[/bold]")
            console.print(render(r["transcript"]), markup=False, highlight=False)
            console.print(f"judge: {v['rationale']}\n", markup=False, highlight=False)
        return
    for stage, label in report.get("not_current", {}).items():
        console.print(f"! {stage}: figures {label}", style="yellow", highlight=False, markup=False)
    for suite, summary in report["suites"].items():
        rows = []
        for test_id, t in summary["tests"].items():
            failed = t["gate"] is not None and t["mean"] < t["gate"]
            flags = " ".join(["GATE"] * failed + ["high variance"] * bool(t["high_variance"]))
            judge = f"{t['judge_std']:.2f}" if t.get("judge_std") is not None else ""
            rows.append(
                [
                    test_id,
                    t["category"],
                    f"{t['mean']:.2f}",
                    f"{t['std']:.2f}",
                    judge,
                    " ".join(f"{x:.1f}" for x in t["runs"]),
                    "" if t["gate"] is None else f"{t['gate']:.1f}",
                    flags,
                ]
            )
        console.print(
            compact_table(
                ["test", "category", "mean", "std", "judge sd", "runs", "gate", ""], rows, f"{report['model']}: {suite}"
            )
        )
        judge_lines(suite, summary, report.get("calibration", {}), console)
        console.print(f"composite {summary['composite']:.2f}", highlight=False)
        for role in ("base", "parent"):
            delta = summary.get(f"delta_vs_{role}")
            if delta:
                tested = delta["significance"]["composite"] | {"alpha": delta["significance"].get("alpha", 0.05)}
                console.print(
                    f"delta vs {role} ({report['against'][role]}): {delta['composite']:+.2f}{_significance(tested)}",
                    highlight=False,
                )
        category_table(summary, report["against"], console)
    knowledge_table(report, console)
    parity_line(report, console)
    quantized_line(report, console)
    served_line(report, console)


def judge_lines(suite: str, summary: dict, calibrated: dict, console: Console) -> None:
    """The judge behind a suite's scores: its agreement with a person (or that it was never checked), and
    its own spread beside the runs'."""
    if suite not in calibrated:
        console.print(
            f"judge: uncalibrated (no {suite}/calibration/ set): its scores are not checked against a person",
            style="yellow",
            highlight=False,
            markup=False,
        )
    elif (c := calibrated[suite]) is not None:
        console.print(f"judge vs a person on {c['n']} answers: {_figures(c)}", highlight=False, markup=False)
        ok = not c.get("shortfalls") and c.get("thresholds")
        console.print(f"  {calibration.verdict(c)}", style=None if ok else "yellow", highlight=False, markup=False)
    if panel := summary.get("panel"):
        pairs = ", ".join(
            f"{p['a']} ~ {p['b']}: kappa {_value(p['kappa'])}, rho {_value(p['spearman'])}, MAE {_value(p['mae'])}"
            for p in panel["pairs"]
        )
        console.print(
            f"panel ({panel['combine']} of {', '.join(panel['judges'])}) on this model's answers: {pairs}",
            highlight=False,
            markup=False,
        )
    if noise := summary.get("noise"):
        console.print(
            f"judge spread (repeated judgements of one transcript): sd {noise['judge_std']:.2f}, against "
            f"the runs' sd {noise['run_std']:.2f}",
            highlight=False,
            markup=False,
        )


def _value(f: dict) -> str:
    return "n/a" if f["value"] is None else f"{f['value']:.2f}"


def _figures(c: dict) -> str:
    shown = []
    for key, label in (("kappa", "kappa"), ("spearman", "rho"), ("mae", "MAE"), ("bias", "bias")):
        f = c[key]
        if f["value"] is None:
            shown.append(f"{label} n/a")
            continue
        interval = f" [{f['ci_low']:+.2f}, {f['ci_high']:+.2f}]" if f.get("ci_low") is not None else ""
        shown.append(f"{label} {f['value']:+.2f}{interval}" if key == "bias" else f"{label} {f['value']:.2f}{interval}")
    return ", ".join(shown)


def category_table(summary: dict, against: dict, console: Console) -> None:
    """Category scores with their deltas vs base and parent, and Holm-adjusted p-values over the suite's
    categories; a drop vs the parent is flagged only when it is significant at the recipe's alpha."""
    rows, styles = [], []
    deltas = {role: summary.get(f"delta_vs_{role}") or {} for role in ("base", "parent")}
    alpha = next((d["significance"].get("alpha") for d in deltas.values() if d), None)
    for category, score in summary["categories"].items():
        cells, regressed = [category, f"{score:.2f}"], False
        for role, delta in deltas.items():
            d = delta.get("categories", {}).get(category)
            tested = delta.get("significance", {}).get("categories", {}).get(category, {})
            p = tested.get("p_holm", tested.get("p_value"))
            cells += ["" if d is None else f"{d:+.2f}", "" if d is None else "n/a" if p is None else f"{p:.2f}"]
            regressed |= role == "parent" and d is not None and d < 0 and bool(tested.get("significant"))
        rows.append([*cells, f"regressed vs {against['parent']}" if regressed else ""])
        styles.append("red" if regressed else None)
    console.print(compact_table(["category", "score", "vs base", "p", "vs parent", "p", ""], rows, styles=styles))
    if alpha is not None:
        console.print(
            f"p: Holm-adjusted over the {len(summary['categories'])} categories (n/a: too few tests, or "
            f"all moved alike); flagged: p < {alpha:g}. Single tests: deltas only (3 seed-paired runs "
            "cannot reach p < 0.25).",
            highlight=False,
            markup=False,
        )


def compact_table(
    headers: list[str], rows: list[list[str]], title: str | None = None, styles: list[str | None] | None = None
):
    """A table for 80 columns: no column without a value in some row, no vertical rules, and no cell cut or
    wrapped (a name cut to a prefix could read as another; runs split over lines read as two rows)."""
    from rich import box
    from rich.table import Table

    kept = [i for i, header in enumerate(headers) if any(row[i] for row in rows)]
    table = Table(*(headers[i] for i in kept), title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    for column in table.columns:
        column.no_wrap = True
    for n, row in enumerate(rows):
        table.add_row(*(row[i] for i in kept), style=styles[n] if styles else None)
    return table


def _significance(s: dict, unit: float = 1.0, suffix: str = "") -> str:
    if s.get("p_value") is None or s.get("ci_low") is None:
        return f"  ({s.get('reason', 'no test')})"
    level = 100 * (1 - s.get("alpha", 0.05))
    shown = (
        f"  p={s['p_value']:.2f}  {level:g}% CI [{s['ci_low'] * unit:+.2f}{suffix}, {s['ci_high'] * unit:+.2f}{suffix}]"
    )
    return shown + ("  significant" if s.get("significant") else "")


def knowledge_table(report: dict, console: Console) -> None:
    """The seed's knowledge-preservation lines: `GSM8K-CoT (flexible, n=500)  v1 96.0%  base 96.2%
    -0.2pp  p=0.87`, with the 95% interval, against base and against parent; every score with its
    standard error (±), the other filters' and, for MMLU-Pro, each subject's."""
    for name, b in report.get("knowledge", {}).items():
        line = f"{b['title']} ({b['filter']}, n={b['n']}) [{name}]  {report['model']} {_share(b)}"
        others = [
            f"{f} {_share({'score': v, 'stderr': b.get('stderrs', {}).get(f)})}"
            for f, v in b.get("scores", {}).items()
            if f != b["filter"]
        ]
        if others:
            line += f"\n  {', '.join(others)}"
        for group, g in b.get("groups", {}).items():
            line += f"\n  {group} {_share(g)} (n={g['n']})"
        for role in ("base", "parent"):
            delta = b.get(f"delta_vs_{role}")
            if delta:
                line += (
                    f"\n  vs {role} {report['against'][role]} {100 * delta['score']:.1f}%  "
                    f"{100 * delta['delta']:+.1f}pp{_significance(delta, 100, 'pp')}"
                )
        console.print(line, highlight=False, markup=False)


def _share(score: dict) -> str:
    error = f" ±{100 * score['stderr']:.1f}" if score.get("stderr") is not None else ""
    return f"{100 * score['score']:.1f}%{error}"


def parity_line(report: dict, console: Console) -> None:
    """The round as served against the round as trained (the fuse's check), in the seed's words."""
    if (p := report.get("parity")) is None:
        return
    console.print(
        f"training (mlx-lm) vs serving (mlx-vlm) on {p['probes']} held-out prompts: max |logit| "
        f"difference {p['max_logit_diff']:.1e}, top-1 {100 * p['top1_agreement']:.0f}%, greedy "
        f"{100 * p['greedy_agreement']:.0f}%: {p['verdict']} (tolerance {p['tolerance']:g}, {p['dtype']})",
        highlight=False,
        markup=False,
    )


def quantized_line(report: dict, console: Console) -> None:
    """A quantized node against its parent: what it costs and buys, and the non-inferiority verdict."""

    if (q := report.get("quantized")) is None:
        return
    parent = report["against"]["parent"]
    judged = shipped.verdict(*shipped.paired(report["suites"], report.get("knowledge", {})), q["margin"])
    mine, theirs = q["speed"]["quantized"], q["speed"]["parent"]
    console.print(
        f"quantized {q['label']} from {parent}: {q['bytes']['total'] / 1e6:.1f} MB "
        f"({q['bytes']['total'] / q['parent_bytes']['total']:.0%} of {parent}), "
        f"{mine['tokens_per_second'] / theirs['tokens_per_second']:.2f}x tokens/s, peak "
        f"{mine['peak_memory_gb'] * 1e3:.0f} MB vs {theirs['peak_memory_gb'] * 1e3:.0f} MB, top-1 "
        f"{q['parity']['top1_agreement']:.0%} with {parent}; {judged['verdict']} ({judged['why']})",
        highlight=False,
        markup=False,
    )


def served_line(report: dict, console: Console) -> None:
    """The server against in-process generation and against training's own greedy answers."""
    if (s := report.get("served")) is None:
        return
    kv = s.get("kv_cache") or {}
    cache = (
        "no KV quantization"
        if kv.get("quantization", "none") == "none"
        else (f"{kv['bits']}-bit {kv['quantization']} KV from token {kv['start']}")
    )
    agreed = s.get("kv_validation_agreement", s.get("validation_agreement"))
    shares = (
        [] if agreed is None else [f"{100 * agreed:.0f}% of {s['validation_prompts']} greedy answers as in process"]
    )
    if "validation_logprob_diff" in s:
        shares.append(f"logprobs within {s['validation_logprob_diff']:.1e}")
    if s.get("samples_compared"):
        shares.append(
            f"{100 * s['samples_agreement']:.0f}% of {s['samples_compared']} held-out prompts as "
            "training answered them (samples.json)"
        )
    console.print(f"served (mlx-vlm server, {cache}): " + ", ".join(shares), highlight=False, markup=False)
