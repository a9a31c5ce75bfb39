"""Every surface tells the same story of a stage's outcome: apply's exit code and summary, `status` at 80
columns, `plan`, `eval show` and the page's sentences (planning/standing.py decides; these read it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from anvil.commands.status import status_rows, status_table
from anvil.planning.record import Outcome
from anvil.project import open_project
from anvil.recipe.serving import KvCache
from anvil.stages import calibration, serve
from anvil.stages.stage import Result
from tests.conftest import LINEAGE, apply_without_mlx, chat_row

PARITY = "the served model differs from training: max |logit| difference 3.1 > 0.02 (float32)"


def anvil(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anvil", *args], cwd=folder, capture_output=True, text=True)


def lineage(folder: Path) -> Path:
    (folder / "data").mkdir(parents=True)
    for name in ("domain", "a", "b"):
        (folder / "data" / f"{name}.jsonl").write_text("\n".join(chat_row(f"q{i} {name}", "a") for i in range(8)))
    (folder / "anvil.toml").write_text(LINEAGE)
    return folder


def test_a_fuse_that_failed_parity_fails_the_apply_with_its_reason(tmp_path):
    folder = lineage(tmp_path / "p")
    failed = Result({"parity": {"verdict": "differs", "message": PARITY}}, Outcome.FAILED, PARITY)
    _, state = apply_without_mlx(folder, {"train": {}, "fuse": lambda workdir: failed})
    assert state["v1.fuse"].outcome is Outcome.FAILED and state["v1.fuse"].reason == PARITY
    applied = anvil(folder, "apply")  # nothing left to run: v2 is blocked by the failed fuse
    assert applied.returncode == 1, applied.stdout + applied.stderr
    assert "v1.fuse FAILED" in applied.stderr and PARITY in applied.stderr
    rows = {row["stage"]: row for row in json.loads(anvil(folder, "status", "--json").stdout)}
    assert rows["v1.fuse"]["state"] == "failed" and rows["v1.fuse"]["reason"] == PARITY
    assert rows["v2.train"]["state"] == "blocked" and rows["v2.train"]["reason"] == "blocked: v1.fuse failed"


def test_status_at_80_columns_shows_every_figure_and_pads_nothing(tmp_path):
    folder = lineage(tmp_path / "p")
    long = "the server agrees on 60% of the validation prompts (with 4-bit turboquant KV quantization from token 0)"
    warned = Result({}, Outcome.WARNED, long)
    apply_without_mlx(folder, {"train": {}, "fuse": lambda workdir: warned})
    console = Console(width=80, record=True)
    status_table(status_rows(open_project(folder / "anvil.toml")), console)
    shown = console.export_text()
    assert max(len(line) for line in shown.splitlines()) <= 80
    assert all(line == line.rstrip() for line in shown.splitlines())
    assert " ".join(shown.split()).count(long) == 2, "both fuses' whole warning, wrapped, never cut"
    assert "v1.fuse" in shown and " warned " in shown and "…" not in shown


def test_a_kv_quantized_server_that_changes_any_answer_warns():
    kv = KvCache(quantization="turboquant", bits=4)
    found = serve._warnings({"validation_agreement": 1.0, "kv_validation_agreement": 0.6}, kv)
    assert len(found) == 1 and found[0].startswith("the server agrees on 60% of the validation prompts (with 4-bit")
    assert serve._warnings({"validation_agreement": 1.0, "kv_validation_agreement": 1.0}, kv) == []


def test_the_judge_sentence_comes_from_its_thresholds():
    agreement = {"kappa": {"value": 0.11}, "spearman": {"value": 0.2}, "mae": {"value": 2.51}, "bias": {"value": 0}}
    figures = lambda **decided: calibration.Calibrated(n=6, alpha=0.05, **agreement, **decided)  # noqa: E731
    unchecked = calibration.verdict(figures(thresholds={}, shortfalls=[]))
    assert unchecked.startswith("Not judged: no judge_agreement thresholds") and "Agrees" not in unchecked
    failed = calibration.verdict(figures(thresholds={"min_kappa": 0.6}, shortfalls=["kappa 0.11 < 0.6"]))
    assert failed == "Failed: kappa 0.11 < 0.6."
    met = calibration.verdict(figures(thresholds={"min_kappa": 0.1, "max_mae": 3.0}, shortfalls=[]))
    assert met == "Agrees with the person within every threshold (min_kappa = 0.1, max_mae = 3)."


def test_stale_composites_and_gates_are_labelled_in_the_summary():
    from anvil.commands.apply import summary_lines

    stale = "as built 2026-12-01 10:00, not current: blocked: tiny.calibration failed"
    summary = {
        "scores": {"tiny": {"v2": {"composite": 2.17, "delta_vs_base": 0.5, "stale": stale}}},
        "warnings": {},
        "gates": {"v2": [{"metric": "composite", "value": 2.17, "min": 1.0, "max": None, "passed": True}]},
        "stale_gates": {"v2": stale},
    }
    console = Console(width=200, record=True)
    summary_lines(summary, console)
    shown = console.export_text()
    assert f"v2 2.17 (+0.50 vs base) [{stale}]" in shown and f"v2 gates: 1 of 1 passed [{stale}]" in shown


def test_plan_says_running_only_for_a_server_it_probed(tmp_path, monkeypatch):
    from tests.conftest import chat_endpoint, serve_models_from
    from tests.stages.test_knowledge import FAKE, answer, make

    with chat_endpoint(answer) as (port, _):
        serve_models_from(monkeypatch, port)
        apply_without_mlx(make(tmp_path / "s"), FAKE)
    planned = anvil(tmp_path / "s", "plan").stdout  # the recorded process (pid 0) runs nowhere
    assert "[running:" not in planned
    downed = anvil(tmp_path / "s", "down")
    assert downed.returncode == 0
    rows = {row["stage"]: row for row in json.loads(anvil(tmp_path / "s", "status", "--json").stdout)}
    assert rows["serve"]["state"] == "down", "after `anvil down` the server is down, not never built"


def test_plan_probes_a_recorded_server_once(tmp_path, monkeypatch):
    """What plan says of the server (its action, its `[running: ...]`) comes from one probe."""
    import dataclasses

    from anvil.cli import main
    from anvil.stages.registry import BY_KIND
    from tests.conftest import chat_endpoint, serve_models_from
    from tests.stages.test_knowledge import FAKE, answer, make

    with chat_endpoint(answer) as (port, _):
        serve_models_from(monkeypatch, port)
        apply_without_mlx(make(tmp_path / "s"), FAKE)
    probes: list[str] = []
    stage = BY_KIND["serve"]
    assert stage.check is not None
    counted = dataclasses.replace(stage, check=lambda record: probes.append(record.id) or stage.check(record))
    monkeypatch.setitem(BY_KIND, "serve", counted)
    monkeypatch.chdir(tmp_path / "s")
    assert main(["plan"]) in (0, 2) and probes == ["serve"], probes
