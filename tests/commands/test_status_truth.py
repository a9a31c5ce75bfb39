"""`status` and `down` say what is true of the recorded server: probed as `plan` probes it (pid, start
time, command line, health), never "up" for a process that is gone or another project's."""

from __future__ import annotations

import json
import subprocess
import sys

from anvil.commands.status import status_rows, status_table
from anvil.project import open_project
from anvil.state.project_state import load_records
from tests.conftest import apply_without_mlx, chat_endpoint, serve_models_from
from tests.stages.test_knowledge import FAKE, answer, make


def _served(tmp_path, monkeypatch):
    with chat_endpoint(answer) as (port, _):
        serve_models_from(monkeypatch, port)
        _, state = apply_without_mlx(make(tmp_path / "s"), FAKE)
    assert "serve" in state
    return tmp_path / "s"


def anvil(folder, *args):
    return subprocess.run([sys.executable, "-m", "anvil", *args], cwd=folder, capture_output=True, text=True)


def test_status_never_says_up_for_a_server_that_is_not_running(tmp_path, monkeypatch):
    folder = _served(tmp_path, monkeypatch)  # its recorded process runs on no host: it is not running
    [row] = [r for r in status_rows(open_project(folder / "anvil.toml")) if r["stage"] == "serve"]
    assert row["problem"] == "server process 0 is not running"
    shown = json.loads(anvil(folder, "status", "--json").stdout)
    assert [r["problem"] for r in shown if r["stage"] == "serve"] == ["server process 0 is not running"]
    from rich.console import Console

    console = Console(width=80, record=True)
    status_table([row], console)
    text = console.export_text()
    line, shown = text.splitlines()[1], " ".join(text.split())
    assert " down " in line and "not running" in shown and " up " not in shown


def test_a_server_another_project_started_is_shown_as_foreign_and_down_leaves_it(tmp_path, monkeypatch):
    folder = _served(tmp_path, monkeypatch)
    project = open_project(folder / "anvil.toml")
    records = project.state.load()
    records["serve"].metrics["project"] = "someone-else"
    project.state.save(records)
    [row] = [r for r in status_rows(project) if r["stage"] == "serve"]
    assert "started by another project" in row["problem"]
    downed = anvil(folder, "down")
    assert downed.returncode == 0 and "started by another project" in downed.stderr
    assert "stopped" not in downed.stdout, "nothing was stopped, and it is not said"


def test_down_says_it_cleared_a_record_of_a_process_that_had_ended(tmp_path, monkeypatch):
    folder = _served(tmp_path, monkeypatch)
    downed = anvil(folder, "down")
    assert downed.returncode == 0 and "was no longer running" in downed.stdout and "stopped" not in downed.stdout
    assert "serve" not in load_records(open_project(folder / "anvil.toml").state.file)


def test_a_reader_that_stops_early_is_no_error(tmp_path, monkeypatch):
    folder = _served(tmp_path, monkeypatch)
    for command in ("status", "eval show v1 --recipe anvil.toml", "plan"):  # `true` reads nothing at all
        piped = subprocess.run(
            f"{sys.executable} -m anvil {command} | true; echo ${{PIPESTATUS[0]}}",
            shell=True,
            executable="/bin/bash",
            cwd=folder,
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "FORCE_COLOR": "1"},
        )
        assert piped.stdout.strip() == "0" and "Traceback" not in piped.stderr, (command, piped.stderr)


def _recorded_server(**changes):
    base = {
        "model": "v2",
        "url": "http://127.0.0.1:8092",
        "name": "v2",
        "since": "2026-12-01T10:00:00+00:00",
        "problem": None,
        "foreign": False,
        "current": True,
        "gates_passed": 35,
        "gates": 35,
    }
    return base | changes


def test_the_last_line_of_apply_says_what_is_actually_recorded_server():
    from anvil.commands.summary import serving_line

    assert serving_line(None) == "Serving nothing."
    line = serving_line(_recorded_server())
    assert line == "Serving v2 at http://127.0.0.1:8092/v1 (model 'v2'); it passed 35 of 35 gates."
    stale = serving_line(_recorded_server(current=False, gates_passed=1))
    assert stale.startswith("Still serving the v2 started 2026-12-01 10:00") and "failed 34 of 35 gates" in stale
    assert "not serving" in serving_line(_recorded_server(problem="server process 12 is not running")).lower()
    foreign = serving_line(_recorded_server(foreign=True, problem="started by another project"))
    assert foreign.startswith("Not serving") and "another project" in foreign


def test_apply_can_leave_a_recorded_server_out(tmp_path, monkeypatch):
    folder = _served(tmp_path, monkeypatch)
    for _ in ("served", "after down"):  # the report shows the server as recorded, or its absence
        applied = anvil(folder, "apply", "--exclude", "serve", "--replace", "report")
        assert applied.returncode == 0 and "Traceback" not in applied.stderr, applied.stderr
        assert "Applied: 1 ran" in applied.stdout
        assert anvil(folder, "down").returncode == 0
