"""Evaluation split in two: transcripts (generation) and eval (scores). The real stages run against a
loopback endpoint that counts the chat requests it answers; a changed judge, rubric or display
threshold re-scores with zero generations, a changed prompt regenerates."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import apply_without_mlx, chat_endpoint, serve_models_from

RECIPE = """\
[project]
name = "rescore"

[models.base]
source = "synthetic:tiny"

[eval]
runs = 2
compare = ["base"]
judge = JUDGE
suites = ["suite"]
high_variance = 2.0
"""
TEST = 'category = "c"\nturns = ["Say hello"]\nrubric = "RUBRIC"\n[[checks]]\nkind = "contains"\nvalue = "hello"\n'
JUDGE = "import json, sys; sys.stdin.read(); print(json.dumps({'score': 3, 'rationale': 'ok'}))"


@pytest.fixture
def endpoint():
    """An OpenAI-compatible chat endpoint on loopback; its requests are the generations it served."""
    with chat_endpoint(lambda body: f"hello there, run {body['seed']}") as (port, requests):
        yield port, requests


def setup(tmp_path, monkeypatch, port: int):
    serve_models_from(monkeypatch, port)
    (tmp_path / "suite").mkdir()
    (tmp_path / "judge.py").write_text(JUDGE)
    write(tmp_path, judge='{ kind = "rules" }')


def write(folder, judge: str, rubric: str = "Greets.", turn: str = "Say hello", high_variance: str = "2.0"):
    (folder / "anvil.toml").write_text(RECIPE.replace("JUDGE", judge).replace("2.0", high_variance))
    (folder / "suite" / "greet.toml").write_text(TEST.replace("RUBRIC", rubric).replace("Say hello", turn))


def apply(folder):
    return apply_without_mlx(folder)


def test_judge_rubric_and_threshold_changes_rescore_without_generating(tmp_path, monkeypatch, endpoint):
    port, requests = endpoint
    setup(tmp_path, monkeypatch, port)
    _, state = apply(tmp_path)
    assert len(requests) == 2, "one test, two runs"
    assert state["base.eval"].metrics["suites"]["suite"]["composite"] == 5.0

    command = f'{{ kind = "command", argv = ["{sys.executable}", "judge.py"] }}'
    write(tmp_path, judge=command)
    plan, state = apply(tmp_path)
    assert plan["base.transcripts"].act.value == "up_to_date"
    assert plan["base.eval"].reasons[0] == 'judge.kind "rules" -> "command"'
    assert len(requests) == 2, "a new judge scores the same conversations"
    assert state["base.eval"].metrics["judge_calls"] == 2
    assert state["base.eval"].metrics["suites"]["suite"]["composite"] == 3.0

    write(tmp_path, judge=command, high_variance="1.0")
    plan, state = apply(tmp_path)
    assert plan["base.eval"].reasons == ("high_variance 2.0 -> 1.0",) and len(requests) == 2
    assert state["base.eval"].metrics["judge_calls"] == 0, "verdicts come from the judge cache"

    write(tmp_path, judge=command, high_variance="1.0", rubric="Greets warmly.")
    plan, _ = apply(tmp_path)
    assert plan["base.transcripts"].act.value == "up_to_date" and plan["base.eval"].act.value == "rerun"
    assert plan["base.eval"].reasons == ('tests.suite.greet.rubric "Greets." -> "Greets warmly."',)
    assert len(requests) == 2

    write(tmp_path, judge=command, high_variance="1.0", rubric="Greets warmly.", turn="Say hi")
    plan, _ = apply(tmp_path)
    assert plan["base.transcripts"].reasons == ('suites.suite.greet.turns ["Say hello"] -> ["Say hi"]',)
    assert len(requests) == 4, "a changed prompt is generated again"
