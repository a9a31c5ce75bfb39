"""The dashboard from real stages, fast: datasets, transcripts (a loopback endpoint), the rules judge,
gates and the report stage are the real ones; only the stages that need MLX are stand-ins. The base
fails a per-test gate, so the page must still be built and must pair that failure with v1's data."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from rich.console import Console

from anvil.commands import report as live
from anvil.commands.eval_show import eval_results, eval_table
from anvil.commands.status import status_rows, status_table
from anvil.evaluation.results import SuiteScores
from anvil.planning.graph import Graph, Node
from anvil.planning.plan import Act, make_plan
from anvil.planning.record import Outcome
from anvil.project import open_project
from anvil.recipe.base import Strict
from anvil.stages.report.page import figure_text
from tests.conftest import apply_without_mlx, chat_endpoint, chat_row, serve_models_from, stage_record

RECIPE = """\
[project]
name = "report"

[models.base]
source = "synthetic:tiny"

[models.v1]
parent = "base"
dataset = "mix"
lora = { last_layers = 2 }

[datasets.mix]
valid_fraction = 0.25
sources = [
  { path = "data/calc.jsonl", category = "tool_use", count = 4 },
  { path = "data/opinions.jsonl", category = "voice", count = 8 },
]
description = "Round one."
categories.tool_use = { description = "DESCRIPTION", addresses = ["a_rather_long_test_name_greets"] }

[eval]
runs = 2
compare = ["base", "v1"]
judge = { kind = "rules" }
suites = ["suite"]

[[gates]]
model = "base"
metric = "suite.test.a_rather_long_test_name_greets"
min = 4.0
"""
TEST = (
    'category = "CATEGORY"\nturns = ["Say hello"]\nrubric = "Greets."\n[[checks]]\nkind = "contains"\nvalue = "hello"\n'
)
LOSS = {
    "train": [{"step": s, "loss": round(3.0 / s, 4)} for s in range(1, 11)],
    "valid": [{"step": 0, "loss": 3.5}, {"step": 5, "loss": 1.25}, {"step": 10, "loss": 0.75}],
}


def fake_train(workdir):
    (workdir / "loss.json").write_text(json.dumps(LOSS))
    return {
        "trainable_parameters": 1000,
        "total_parameters": 100000,
        "trainable_percent": 1.0,
        "peak_memory_gb": 0.5,
        "seconds_per_step": 0.2,
        "train_loss_first": 3.0,
        "train_loss_last": 0.3,
        "valid_loss_last": 0.75,
    }


@pytest.fixture
def built(tmp_path, monkeypatch):
    """The recipe applied; the endpoint says hello for v1 only, so the base fails its gate."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "calc.jsonl").write_text("".join(chat_row(f"{i}+1?", f"{i + 1}") + "\n" for i in range(6)))
    (tmp_path / "data" / "opinions.jsonl").write_text(
        "".join(chat_row(f"Is {i} good?", "No.") + "\n" for i in range(8))
    )
    (tmp_path / "suite").mkdir()
    for name, category in (("a_rather_long_test_name_greets", "greeting"), ("a_rather_long_test_name_gruff", "tone")):
        (tmp_path / "suite" / f"{name}.toml").write_text(TEST.replace("CATEGORY", category))
    (tmp_path / "anvil.toml").write_text(RECIPE)
    with chat_endpoint(lambda body: "hello there" if body["model"] == "v1" else "go away") as (port, requests):
        serve_models_from(monkeypatch, port)
        plan, state = apply_without_mlx(tmp_path, {"train": fake_train, "fuse": {}})
        yield tmp_path, plan, state


def page_data(folder):
    project = open_project(folder / "anvil.toml")
    record = project.state.load()["report"]
    artifact = project.store.artifact(record.fingerprint)
    return project, json.loads((artifact / "report.json").read_text()), (artifact / "report.html").read_text()


def test_the_report_is_built_after_a_failed_gate_and_pairs_it_with_the_data_that_targets_it(built):
    folder, plan, state = built
    assert state["base.gate"].outcome is Outcome.FAILED and plan["report"].act is Act.CREATE
    project, data, html = page_data(folder)
    assert [(m["model"], m["state"]) for m in data["lineage"]] == [("base", "failed"), ("v1", "built")]
    [round_] = data["rounds"]
    assert [(c["name"], c["rows"], c["description"]) for c in round_["dataset"]["categories"]] == [
        ("tool_use", 4, "DESCRIPTION"),
        ("voice", 8, None),
    ]
    [targets] = data["targets"]  # the gate's section: what v1 targets in base, beside v1's data
    assert (targets["model"], targets["parent"], targets["kind"]) == ("v1", "base", "gate failures")
    [target] = targets["rows"]
    assert (target["test"], target["value"], target["addressed_by"]) == (
        "a_rather_long_test_name_greets",
        0.0,
        ["tool_use"],
    )
    assert target["rationale"] and target["category"] == "greeting"
    assert round_["loss"]["train"] == LOSS["train"] and [r["step"] for r in round_["loss"]["table"]] == [0, 1, 5, 10]
    cards = {c["model"]: c for c in data["composites"]}
    assert cards["v1"]["composite"] == state["v1.eval"].metrics["suites"]["suite"]["composite"] == 5.0
    assert cards["v1"]["delta_vs_base"] == 5.0
    assert data["knowledge"] == [] and "Not run" in html
    assert data["sources"]["v1.eval"]["fingerprint"] == state["v1.eval"].fingerprint
    # The page tells where each figure comes from, and what it shows is what the artifacts say.
    figures = {m: v for m, _, v in re.findall(r'data-metric="([^"]+)" title="([^"]*)">([^<]*)<', html)}
    assert figures["composite:v1:suite"] == "5.00" and figures["mix:v1:voice"] == "8"
    assert (
        figures["loss:v1:valid:5"] == "1.2500"
        and figures["gate:base:suite.test.a_rather_long_test_name_greets"] == "0.00"
    )
    assert f'title="v1.eval · fingerprint {state["v1.eval"].fingerprint[:12]}"' in html
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<link" not in html and "<script src" not in html


def test_the_stable_page_is_the_report_artifact_once_everything_is_built(built):
    folder, _, _ = built
    project, _, html = page_data(folder)
    assert live.write(project).read_text() == html
    assert "http-equiv" not in html, "only a page written while an apply runs reloads itself"


def test_notes_rebuild_the_report_and_nothing_else(built):
    folder, _, _ = built
    (folder / "anvil.toml").write_text(RECIPE.replace("DESCRIPTION", "Calls the calculator."))
    plan = open_project(folder / "anvil.toml").plan()
    assert [a.stage for a in plan.changes] == ["report"], "a note is not part of the dataset's fingerprint"
    assert plan.changes[0].reasons == (
        'datasets.mix.categories.tool_use.description "DESCRIPTION" -> "Calls the calculator."',
    )


def test_status_fits_80_columns_and_eval_show_never_cuts_a_test_name(built):
    folder, _, _ = built
    project = open_project(folder / "anvil.toml")
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    status_table(status_rows(project), console)
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80 and all(line == line.rstrip() for line in lines)
    rows: list[str] = []
    for line in lines:  # a row's result that does not fit continues on the lines below it
        if line.startswith(" ") and rows:
            rows[-1] += " " + line.strip()
        else:
            rows.append(line)
    rows = [" ".join(row.split()) for row in rows]
    assert any(row.startswith("v1.eval ") and "suite 5.00 (+5.00 vs base)" in row for row in rows), lines
    assert any(row.startswith("base.gate failed") and "FAILED 1 of 1" in row for row in rows), lines
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    eval_table(eval_results(project, "v1"), None, console)
    shown = console.export_text()
    assert "a_rather_long_test_name_greets" in shown and "a_rather_long_test_name_gruff" in shown
    assert max(len(line) for line in shown.splitlines()) <= 80
    env = {**os.environ, "COLUMNS": "80"}
    printed = subprocess.run(
        [sys.executable, "-m", "anvil", "eval", "show", "v1"], cwd=folder, capture_output=True, text=True, env=env
    ).stdout
    assert "a_rather_long_test_name_greets" in printed and "composite" in printed
    assert [line for line in printed.splitlines() if len(line) > 80 or line != line.rstrip()] == []


def test_eval_show_flags_only_a_significant_regression_against_the_parent():
    tested = {
        "tone": {"delta": -1.5, "p_value": 0.004, "p_holm": 0.012, "significant": True},
        "greeting": {"delta": 1.5, "p_value": 0.01, "p_holm": 0.02, "significant": True},
        "voice": {"delta": -3.75, "p_value": 0.5, "p_holm": 0.5, "significant": False},
    }
    composite = {"delta": 0.0, "p_value": 1.0, "ci_low": -1, "ci_high": 1}
    significance = {"alpha": 0.05, "composite": composite, "categories": tested, "tests": "deltas only"}
    summary = {
        "tests": {},
        "composite": 2.0,
        "categories": {"tone": 1.0, "greeting": 3.0, "voice": 0.5},
        "delta_vs_parent": {
            "composite": 0.0,
            "categories": {"tone": -1.5, "greeting": 1.5, "voice": -3.75},
            "tests": {},
            "significance": significance,
        },
    }
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    eval_table(
        {
            "model": "v2",
            "against": {"base": "base", "parent": "v1"},
            "suites": {"s": SuiteScores.model_validate(summary)},
            "runs": [],
        },
        None,
        console,
    )
    lines = console.export_text().splitlines()
    [regressed] = [line.replace("│", " ").split() for line in lines if "regressed vs v1" in line]
    assert regressed[:3] == ["tone", "1.00", "-1.50"]
    assert not [line for line in lines if "greeting" in line and "regressed" in line], "a rise is no regression"
    assert not [line for line in lines if "voice" in line and "regressed" in line], "-3.75 at p = 0.50 is a move"
    assert any("Holm-adjusted" in line for line in lines) and any("flagged: p < 0.05" in line for line in lines)


class Nothing(Strict):
    pass


def test_an_observer_runs_after_a_failed_stage_that_blocks_the_others():
    nodes = [
        Node("gate", "gate", Nothing()),
        Node("serve", "serve", Nothing(), needs={"gate": "gate"}),
        Node("report", "report", Nothing(), needs={"gate": "gate", "serve": "serve"}, observer=True),
    ]
    graph = Graph({n.id: n for n in nodes})
    records = {
        "gate": stage_record(
            "gate", "gate", fingerprint=make_plan(graph, {}, {}).actions[0].fingerprint, outcome=Outcome.FAILED
        )
    }
    acts = {a.stage: a.act for a in make_plan(graph, records, {}).actions}
    assert acts == {"gate": Act.UP_TO_DATE, "serve": Act.BLOCKED, "report": Act.CREATE}


def test_figures_are_formatted_for_people():
    assert [
        figure_text(v, s)
        for v, s in (
            (4.149, ".2f"),
            (0.3, "+.2f"),
            (0.004, "p"),
            (0.87, "p"),
            (0.962, "pct"),
            (-0.002, "pp"),
            (24_500_000, "params"),
            (None, ".2f"),
            (float("nan"), "p"),
            (95.0, "s"),
            (600.0, "s"),
        )
    ] == ["4.15", "+0.30", "<0.01", "0.87", "96.2%", "-0.2pp", "24.5M", "–", "–", "95s", "10.0 min"]


def test_a_parent_without_gates_shows_its_weakest_tests_and_the_data_that_targets_them(tmp_path, monkeypatch):
    folder = tmp_path / "nogates"
    folder.mkdir()
    (folder / "data").mkdir()
    (folder / "data" / "calc.jsonl").write_text("".join(chat_row(f"{i}+1?", f"{i + 1}") + "\n" for i in range(6)))
    (folder / "data" / "opinions.jsonl").write_text("".join(chat_row(f"Is {i} ok?", "No.") + "\n" for i in range(8)))
    (folder / "suite").mkdir()
    for name, category in (("a_rather_long_test_name_greets", "greeting"), ("a_rather_long_test_name_gruff", "tone")):
        (folder / "suite" / f"{name}.toml").write_text(TEST.replace("CATEGORY", category))
    (folder / "anvil.toml").write_text(RECIPE[: RECIPE.index("[[gates]]")])
    with chat_endpoint(lambda body: "go away") as (port, _):
        serve_models_from(monkeypatch, port)
        apply_without_mlx(folder, {"train": fake_train, "fuse": {}})
    _, data, html = page_data(folder)
    [targets] = data["targets"]
    assert targets["kind"] == "weakest tests", "the seed's section, for a parent without gates"
    rows = {r["test"]: r for r in targets["rows"]}
    assert set(rows) == {"a_rather_long_test_name_greets", "a_rather_long_test_name_gruff"}
    assert (
        rows["a_rather_long_test_name_greets"]["addressed_by"] == ["tool_use"]
        and rows["a_rather_long_test_name_gruff"]["addressed_by"] == []
    )
    assert (
        "base weakest tests — what v1 targets" in html
        and 'data-metric="target:v1:a_rather_long_test_name_greets"' in html
    )
    numbers = re.findall(r'<span class="no">(\d+)</span>', html)
    assert numbers == [str(i) for i in range(1, len(numbers) + 1)], "sections numbered once each, in order"


def test_a_knowledge_chart_of_zeros_is_said_in_words():
    from anvil.stages.knowledge import charts

    rows = [{"model": m, "benchmark": b, "score": 0.0} for m in ("base", "v1") for b in ("gsm8k_cot_max32", "x")]
    assert charts({"knowledge": rows})["knowledge"] is None
    rows[0]["score"] = 0.25
    assert "gsm8k_cot_max32" in charts({"knowledge": rows})["knowledge"]
