"""A no-op `plan` answered from the last full one (anvil/replay.py): only while every path that plan looked at
and every process it relied on is as it was."""

from __future__ import annotations

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

from anvil import cli, main, replay
from anvil.arguments import parser
from anvil.backends.process import Owned


@pytest.fixture
def planned(monkeypatch, capsys):
    """Run `anvil plan ARGS` (or `anvil validate ...`) in this process: (exit code, stdout, whether the full
    CLI ran)."""
    monkeypatch.setattr(replay, "RACY_S", 0.0)  # the files were written a moment ago; no second may pass here
    full = cli.run

    def run(*args: str) -> tuple[int, str, bool]:
        calls = []
        monkeypatch.setattr(cli, "run", lambda parsed: calls.append(parsed) or full(parsed))
        capsys.readouterr()
        code = main.main(list(args) if args and args[0] == "validate" else ["plan", *args])
        return code, capsys.readouterr().out, bool(calls)

    return run


def test_an_unchanged_plan_is_answered_again_without_the_full_cli(data_dir, planned):
    code, first, full = planned("--detailed-exitcode")
    assert (code, full) == (2, True) and "create" in first
    assert planned("--detailed-exitcode") == (2, first, False)
    assert planned()[2] is True  # other arguments: another answer, made in full once


def test_an_edited_data_file_or_recipe_is_planned_in_full(data_dir, planned):
    first = planned()[1]
    assert planned() == (0, first, False)
    with open(data_dir / "data" / "a.jsonl", "a") as f:
        f.write('{"messages": [{"role": "user", "content": "new"}, {"role": "assistant", "content": "row"}]}\n')
    assert planned()[2] is True
    assert planned()[2] is False
    recipe = data_dir / "anvil.toml"
    recipe.write_text(recipe.read_text().replace("valid_fraction = 0.25", "valid_fraction = 0.5"))
    assert planned()[2] is True


def test_an_artifact_changed_outside_anvil_is_planned_in_full(data_dir, planned):
    assert cli.main(["apply"]) == 0
    code, text, _ = planned()
    assert "No changes" in text and planned() == (code, text, False)
    state = json.loads((data_dir / ".anvil" / "state" / "anvil.toml" / "state.json").read_text())
    artifact = data_dir / ".anvil" / "artifacts" / state["stages"]["dataset.domain"]["fingerprint"]
    next(p for p in artifact.rglob("*") if p.is_file()).write_text("edited\n")
    code, text, full = planned()
    assert full and "dataset.domain: artifact missing or modified outside anvil" in text


def test_a_repeated_validate_is_answered_again_until_a_row_breaks(data_dir, planned):
    code, text, full = planned("validate")
    assert (code, full) == (0, True) and "valid" in text
    assert planned("validate") == (0, text, False)
    with open(data_dir / "data" / "b.jsonl", "a") as f:
        f.write('{"messages": []}\n')
    assert planned("validate")[::2] == (1, True)
    assert planned("validate")[::2] == (1, True)  # an error is never kept


def test_a_saved_plan_is_never_answered_from_a_kept_one(data_dir, planned):
    planned()
    assert planned("-out", "plan.json")[2] is True
    assert planned("--out", "plan.json")[2] is True
    assert len(list((data_dir / ".anvil" / "state" / "anvil.toml" / "replay").glob("plan-*"))) == 1


def test_a_damaged_kept_answer_is_no_answer(data_dir, planned):
    first = planned()[1]
    (kept,) = (data_dir / ".anvil" / "state" / "anvil.toml" / "replay").glob("plan-*.json")
    for damage in ("{", "[]", '{"format": 1}', '{"format": 1, "watched": [[1]], "probes": [], "exit": 0}'):
        kept.write_text(damage)
        assert planned() == (0, first, True)


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_probe_holds_only_for_the_very_process_answering():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        me = psutil.Process()
        owned = Owned(os.getpid(), me.create_time(), socket.gethostname(), " ".join(me.cmdline()))
        url = f"http://127.0.0.1:{server.server_address[1]}"
        probe = {"process": owned.to_json(), "url": f"{url}/health", "key_env": None}
        assert replay._still_serving(probe)
        assert not replay._still_serving({**probe, "url": f"{url}/other"})
        assert not replay._still_serving({**probe, "process": {**owned.to_json(), "started": owned.started + 5}})
        assert not replay._still_serving({**probe, "key_env": "ANVIL_TEST_UNSET_KEY"})
    finally:
        server.shutdown()


def test_signatures_tell_files_folders_links_and_absence_apart(tmp_path):
    (tmp_path / "f").write_text("a")
    (tmp_path / "d").mkdir()
    (tmp_path / "l").symlink_to("f")
    file_before = replay._signature(str(tmp_path / "f"), False)
    assert file_before[0] == "file" and replay._signature(str(tmp_path / "missing"), False) is None
    assert replay._signature(str(tmp_path / "l"), False) == ["link", "f"]
    assert replay._signature(str(tmp_path / "d"), False) == ["dir", 0]
    listed = replay._signature(str(tmp_path / "d"), True)
    (tmp_path / "d" / "new").write_text("")
    assert replay._signature(str(tmp_path / "d"), True) != listed
    os.replace(tmp_path / "l", tmp_path / "f")
    assert replay._signature(str(tmp_path / "f"), False) != file_before


def test_only_plans_and_validates_are_eligible():
    def eligible(*argv: str) -> str | None:
        return replay._eligible(parser(cli.COMMANDS).parse_args(argv))

    assert eligible("plan") == "anvil.toml" and eligible("validate") == "anvil.toml"
    assert eligible("plan", "r.toml", "--target", "v1") == "r.toml"
    assert eligible("plan", "--target", "v1", "r.toml") == "r.toml"
    assert eligible("validate", "r.toml", "s.toml") == "r.toml"
    assert eligible("plan", "--out", "p.json") is None
    assert eligible("apply") is None and eligible("status") is None


def test_a_usage_error_or_help_ends_before_any_kept_answer(capsys):
    for argv in (["plan", "--bogus"], ["plan", "--help"], []):
        with pytest.raises(SystemExit):
            main.main(argv)
