"""A judge reward's judge as the training child asks it (backends/lora_worker.RewardJudge): the recipe's
judge, run where the recipe was applied from, its verdicts cached with the evaluation's, a failure named."""

from __future__ import annotations

import sys

import pytest

from anvil.backends.lora_worker import RewardJudge
from anvil.errors import AnvilError
from anvil.methods.grpo import transcript

# A command judge that reads a file relative to where it runs: it scores 5 when the answer has the word in it.
JUDGE = (
    "import sys, pathlib\n"
    "word = pathlib.Path('word.txt').read_text().strip()\n"
    "print('score: 5' if word in sys.stdin.read().split('assistant:')[-1] else 'score: 0')\n"
)


def spec(tmp_path, judge: dict) -> dict:
    test = {"id": "t", "category": "c", "rubric": "Says the word.", "checks": []}
    cache, cwd = tmp_path / "cache", tmp_path / "project"
    cwd.mkdir(exist_ok=True)
    (cwd / "word.txt").write_text("Forge")
    return {"judge": judge, "tests": {"s/t": test}, "concurrency": 2, "cache": str(cache), "cwd": str(cwd)}


def test_each_answer_is_judged_where_the_recipe_was_applied_and_cached(tmp_path):
    judge = RewardJudge(spec(tmp_path, {"kind": "command", "argv": [sys.executable, "-c", JUDGE], "retries": 1}))
    asks = [("s/t", transcript({"prompt": "Iron?"}, answer)) for answer in ("Forge iron.", "No idea.")]
    assert [v.score for v in judge(asks)] == [5.0, 0.0] and judge.members == []
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2, "verdicts in the evaluation's cache"
    assert all(v.cached for v in judge(asks)), "asked again: read back, not asked"


def test_a_panel_reports_each_member_and_a_failing_judge_fails_the_round(tmp_path):
    command = {"kind": "command", "argv": [sys.executable, "-c", JUDGE], "retries": 1}
    panel = RewardJudge(spec(tmp_path, {"kind": "panel", "judges": [command, {"kind": "rules"}]}))
    assert len(panel.members) == 2
    broken = RewardJudge(spec(tmp_path, {"kind": "command", "argv": [sys.executable, "-c", "exit(3)"], "retries": 1}))
    with pytest.raises(AnvilError, match="the reward's judge failed on s/t: judge failed"):
        broken([("s/t", transcript({"prompt": "Iron?"}, "Forge"))])
