"""`anvil eval show MODEL [TEST]`: a model's scores per suite (tests, categories, composite, deltas with
their significance) and its knowledge benchmarks, or one test's transcripts with the judge's rationales."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from anvil.commands import DEFAULT_RECIPE, Parser, open_project
from anvil.console import fitted
from anvil.errors import EXIT_OK, AnvilError
from anvil.evaluation.agent import render
from anvil.evaluation.results import BenchmarkScores, Run, SuiteScores
from anvil.planning.graph import stage_id
from anvil.stages import calibration, evaluate, knowledge, transcripts
from anvil.stages.registry import BY_KIND, STAGES

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
        print(json.dumps(to_jsonable_python(report), indent=2))
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
        scores = evaluate.results_of(project.store.artifact(scored.fingerprint))
        results |= {"format": scores.format, "suites": scores.suites, "runs": scores.runs}
        results["calibration"] = {
            suite: calibration.figures(records[sid]) if sid in records else None
            for suite, sid in transcripts.calibrated_suites(recipe, project.loaded.suites).items()
        }
    if known is not None:
        results["knowledge"] = knowledge.results_of(project.store.artifact(known.fingerprint)).benchmarks
    for node in project.graph.order():  # the model trained, quantized and served, as its stages found it
        shown, record = BY_KIND[node.kind].shown, records.get(node.id)
        figures = shown.figures(record, recipe, model) if node.model == model and shown and record else None
        if shown is not None and figures is not None:
            results[shown.key] = figures
    return results


def eval_table(report: dict, test: str | None, console: Console) -> None:
    """Scores per suite (tests, categories, composite, deltas), or one test's runs in full."""
    if test is not None:
        runs: list[Run] = [r for r in report["runs"] if r.test == test]
        if not runs:
            known = sorted({r.test for r in report["runs"]})
            raise AnvilError(f"no test {test!r} in {report['model']}'s results (expected one of: {', '.join(known)})")

        for r in runs:
            console.print(f"[bold]{r.suite}/{test} run {r.run}: score {r.verdict.score:.2f}[/bold]")
            console.print(render(r.transcript), markup=False, highlight=False)
            console.print(f"judge: {r.verdict.rationale}\n", markup=False, highlight=False)
        return
    for stage, label in report.get("not_current", {}).items():
        console.print(f"! {stage}: figures {label}", style="yellow", highlight=False, markup=False)
    suites: dict[str, SuiteScores] = report["suites"]
    for suite, summary in suites.items():
        rows = []
        for test_id, t in summary.tests.items():
            failed = t.gate is not None and t.mean < t.gate
            flags = " ".join(["GATE"] * failed + ["high variance"] * t.high_variance)
            rows.append(
                [
                    test_id,
                    t.category,
                    f"{t.mean:.2f}",
                    f"{t.std:.2f}",
                    "" if t.judge_std is None else f"{t.judge_std:.2f}",
                    " ".join(f"{x:.1f}" for x in t.runs),
                    "" if t.gate is None else f"{t.gate:.1f}",
                    flags,
                ]
            )
        console.print(
            compact_table(
                ["test", "category", "mean", "std", "judge sd", "runs", "gate", ""], rows, f"{report['model']}: {suite}"
            )
        )
        judge_lines(suite, summary, report.get("calibration", {}), console)
        console.print(f"composite {summary.composite:.2f}", highlight=False)
        for role in ("base", "parent"):
            if delta := summary.delta(role):
                tested = delta.significance.composite.model_dump() | {"alpha": delta.significance.alpha}
                console.print(
                    f"delta vs {role} ({report['against'][role]}): {delta.composite:+.2f}{_significance(tested)}",
                    highlight=False,
                )
        category_table(summary, report["against"], console)
    knowledge_table(report, console)
    for stage in STAGES:  # what the model's other stages add: its parity, its quantization, its server
        if stage.shown is not None and (figures := report.get(stage.shown.key)) is not None:
            for line in stage.shown.lines(figures, report):
                console.print(line, highlight=False, markup=False)


def judge_lines(suite: str, summary: SuiteScores, calibrated: dict, console: Console) -> None:
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
        console.print(f"judge vs a person on {c.n} answers: {_figures(c.model_dump())}", highlight=False, markup=False)
        ok = not c.shortfalls and c.thresholds
        console.print(f"  {calibration.verdict(c)}", style=None if ok else "yellow", highlight=False, markup=False)
    if panel := summary.panel:
        pairs = ", ".join(
            f"{p['a']} ~ {p['b']}: kappa {_value(p['kappa'])}, rho {_value(p['spearman'])}, MAE {_value(p['mae'])}"
            for p in panel.pairs
        )
        console.print(
            f"panel ({panel.combine} of {', '.join(panel.judges)}) on this model's answers: {pairs}",
            highlight=False,
            markup=False,
        )
    if noise := summary.noise:
        console.print(
            f"judge spread (repeated judgements of one transcript): sd {noise.judge_std:.2f}, against "
            f"the runs' sd {noise.run_std:.2f}",
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


def category_table(summary: SuiteScores, against: dict, console: Console) -> None:
    """Category scores with their deltas vs base and parent, and Holm-adjusted p-values over the suite's
    categories; a drop vs the parent is flagged only when it is significant at the recipe's alpha."""
    rows, styles = [], []
    deltas = {role: delta for role in ("base", "parent") if (delta := summary.delta(role))}
    alpha = next((d.significance.alpha for d in deltas.values()), None)
    for category, score in summary.categories.items():
        cells, regressed = [category, f"{score:.2f}"], False
        for role in ("base", "parent"):
            delta = deltas.get(role)
            d = delta.categories.get(category) if delta else None
            tested = delta.significance.categories.get(category) if delta else None
            p = tested.p_shown if tested else None
            cells += ["" if d is None else f"{d:+.2f}", "" if d is None else "n/a" if p is None else f"{p:.2f}"]
            regressed |= role == "parent" and d is not None and d < 0 and bool(tested and tested.significant)
        rows.append([*cells, f"regressed vs {against['parent']}" if regressed else ""])
        styles.append("red" if regressed else None)
    console.print(compact_table(["category", "score", "vs base", "p", "vs parent", "p", ""], rows, styles=styles))
    if alpha is not None:
        console.print(
            f"p: Holm-adjusted over the {len(summary.categories)} categories (n/a: too few tests, or "
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
    benchmarks: dict[str, BenchmarkScores] = report.get("knowledge", {})
    for name, b in benchmarks.items():
        line = f"{b.title} ({b.filter}, n={b.n}) [{name}]  {report['model']} {_share(b.score, b.stderr)}"
        notes = ["run by lm-eval"] * bool(b.lm_eval_task) + ["overlaps training by design"] * b.overlaps_training
        if notes:
            line += f"\n  {'; '.join(notes)}"
        others = [f"{f} {_share(v, b.stderrs.get(f))}" for f, v in b.scores.items() if f != b.filter]
        if others:
            line += f"\n  {', '.join(others)}"
        for group, g in b.groups.items():
            line += f"\n  {group} {_share(g.score, g.stderr)} (n={g.n})"
        for role in ("base", "parent"):
            if delta := b.delta(role):
                line += (
                    f"\n  vs {role} {report['against'][role]} {100 * delta.score:.1f}%  "
                    f"{100 * delta.delta:+.1f}pp{_significance(delta.model_dump(), 100, 'pp')}"
                )
        console.print(line, highlight=False, markup=False)


def _share(score: float, stderr: float | None) -> str:
    error = f" ±{100 * stderr:.1f}" if stderr is not None else ""
    return f"{100 * score:.1f}%{error}"
