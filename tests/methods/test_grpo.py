"""GRPO's settings and rewards, pure: what each reward term scores, what the recipe refuses, and what a round
reports from its held-out rewards and per-step figures."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from anvil.methods import grpo
from anvil.methods.rewards import Grpo, Term, problem, score, total

ROW = {"prompt": "How much is 2 + 2?", "answer": "The answer is 4.", "number": "4"}


@pytest.mark.parametrize(
    ("term", "answer", "expected"),
    [
        ({"kind": "exact", "field": "answer"}, "the answer is 4\nand more", 1.0),
        ({"kind": "exact", "field": "answer"}, "The answer is 5.", 0.0),
        ({"kind": "contains", "field": "number"}, "so 4 it is", 1.0),
        ({"kind": "number", "field": "number"}, "2 + 2 = 4.", 1.0),
        ({"kind": "number", "field": "number"}, "4, or maybe 1,000", 0.0),
        ({"kind": "number", "field": "number"}, "no digits", 0.0),
        ({"kind": "regex", "pattern": r"answer is \d+"}, "The answer is 4.", 1.0),
        ({"kind": "regex", "pattern": r"answer is \d+", "full": True}, "The answer is 4.", 0.0),
        ({"kind": "json", "schema": {"type": "object", "required": ["a"]}}, '{"a": 1}', 1.0),
        ({"kind": "json", "schema": {"type": "object", "required": ["a"]}}, '{"b": 1}', 0.0),
        ({"kind": "json", "schema": {"type": "object"}}, "not json", 0.0),
    ],
)
def test_each_term_scores_an_answer(term, answer, expected):
    assert score(Term.model_validate(term), answer, ROW) == expected


def test_the_reward_is_the_terms_weighted_mean():
    settings = Grpo.model_validate(
        {"reward": [{"kind": "regex", "pattern": "4"}, {"kind": "exact", "field": "answer", "weight": 3}]}
    )
    assert total(settings, "4", ROW) == pytest.approx(0.25)
    assert total(settings, "The answer is 4.", ROW) == 1.0


@pytest.mark.parametrize(
    ("settings", "expect"),
    [
        ({"reward": []}, "at least 1"),
        ({"reward": [{"kind": "exact"}]}, "a exact term needs `field`"),
        ({"reward": [{"kind": "regex", "pattern": "(unclosed"}]}, "does not compile"),
        ({"reward": [{"kind": "regex", "pattern": "x", "field": "answer"}]}, "a regex term takes no field"),
        ({"reward": [{"kind": "json", "schema": {"type": 12}}]}, "is not a JSON Schema"),
        ({"reward": [{"kind": "regex", "pattern": "x"}], "group_size": 1}, "greater than or equal to 2"),
        ({"reward": [{"kind": "regex", "pattern": "x", "weight": 0}]}, "greater than 0"),
    ],
)
def test_bad_settings_are_refused_by_what_they_say(settings, expect):
    with pytest.raises(ValidationError, match=expect):
        Grpo.model_validate(settings)


def test_a_judge_term_scores_the_judges_verdict_and_only_that():
    settings = Grpo.model_validate(
        {"reward": [{"kind": "judge", "test": "tiny/domain_forge_iron"}, {"kind": "regex", "pattern": "Forge"}]}
    )
    assert problem(settings) is None and [t.suite for t in settings.judged()] == ["tiny"]
    assert total(settings, "Forge iron at 1100 C.", ROW, {"tiny/domain_forge_iron": 2.5}) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="only with the judge's verdict"):
        total(settings, "Forge", ROW)
    with pytest.raises(ValidationError, match="a judge term takes no field"):
        Term.model_validate({"kind": "judge", "test": "tiny/x", "field": "answer"})
    with pytest.raises(ValidationError, match="test"):
        Term.model_validate({"kind": "judge", "test": "no-slash"})


def test_the_held_out_judges_are_paired_and_a_dissenting_panel_member_is_named(tmp_path):
    from anvil.stages.gate import judges_disagree

    before = {"held_out_rewards": [0.0] * 8, "held_out_judges": {"judge": [1.0] * 8, "a": [1.0] * 8, "b": [1.0] * 8}}
    after = {"held_out_rewards": [1.0] * 8, "held_out_judges": {"judge": [4.0] * 8, "a": [5.0] * 8, "b": [1.0] * 8}}
    metrics = grpo.results(before, after, tmp_path)
    assert metrics["held_out_judges"]["judge"] == {
        "before": 1.0,
        "after": 4.0,
        "improved": 8,
        "worsened": 0,
        "p_value": pytest.approx(2 / 2**8),
    }
    why = judges_disagree(metrics, 0.05)
    assert why is not None and "1.00 -> 4.00 of 5" in why and "b 1.00 -> 1.00 (p=1)" in why and "a 1.00" not in why
    agreed = {"held_out_judges": {**metrics["held_out_judges"], "b": metrics["held_out_judges"]["a"]}}
    assert judges_disagree(agreed, 0.05) is None, "every member rose with it"
    assert judges_disagree({}, 0.05) is None, "no judge reward"
    single = {"held_out_judges": {"judge": metrics["held_out_judges"]["judge"]}}
    assert judges_disagree(single, 0.05) is None, "one judge: no second to ask"


def test_the_child_asks_the_judge_for_each_answer_and_term_at_once():
    class Verdict:
        def __init__(self, score):
            self.score = score

    asked = []

    def judge(asks):
        asked.extend(asks)
        return [Verdict(5.0 if "Forge" in t["final"] else 0.0) for _, t in asks]

    class Session:
        pass

    session = Session()
    session.judge = judge
    settings = Grpo.model_validate({"reward": [{"kind": "judge", "test": "s/t"}]})
    rows = [{"prompt": "Iron?", "system": "Short."}, {"prompt": "Gold?"}]
    found = grpo.judged(session, settings, rows, ["Forge iron.", "No."])
    assert [f["s/t"].score for f in found] == [5.0, 0.0]
    assert [m["role"] for m in asked[0][1]["messages"]] == ["system", "user", "assistant"] and asked[1][0] == "s/t"


def test_results_pair_the_held_out_prompts_and_report_the_steps(tmp_path):
    (tmp_path / grpo.STEPS).write_text(
        json.dumps(
            [
                {"step": 1, "reward_mean": 0.0, "kl": 0.0, "no_signal": 1.0},
                {"step": 2, "reward_mean": 0.5, "kl": 0.2, "no_signal": 0.5},
            ]
        )
    )
    before, after = {"held_out_rewards": [0.0] * 10}, {"held_out_rewards": [1.0] * 9 + [0.0]}
    metrics = grpo.results(before, after, tmp_path)
    assert metrics["held_out_reward_before"] == 0.0 and metrics["held_out_reward_after"] == 0.9
    assert metrics["held_out_improved"] == 9 and metrics["held_out_worsened"] == 0
    assert metrics["held_out_p_value"] == pytest.approx(2 / 2**9)
    assert (metrics["reward_mean_first"], metrics["reward_mean_last"]) == (0.0, 0.5)
    assert metrics["no_signal_last"] == 0.5
    assert "held-out reward 0.00 -> 0.90" in (grpo.summary(metrics) or "")


def test_a_grpo_step_is_planned_with_its_group_and_what_it_samples_first():
    from anvil.backends.machine import Speed
    from anvil.estimates.first_run import training

    speed = Speed(python_s=0.01, op_s=1e-5, flops=1e11, bandwidth=1e10)
    settings = {"train": {"steps": 10, "batch_size": 2, "max_seq_length": 128}, "lora": {"last_layers": 4}}
    sft = training(settings, None, speed, 64.0)
    group, sampled = grpo.per_row({"group_size": 8, "max_completion_length": 32})
    assert (group, sampled) == (8, 32)
    rl = training(settings, None, speed, 64.0, group, sampled, grpo.REFERENCE)
    assert rl > 3 * sft, "eight answers of 64 + 32 tokens, sampled first, and the reference's forward"
    assert training(settings, None, speed, 64.0, 4, 32, True) < rl


def test_a_judge_reward_counts_its_calls_in_the_plan():
    from anvil.stages.train import _judged

    train = {"steps": 10, "batch_size": 2}
    command = {"train": train, "reward_judge": {"judge": {"kind": "command"}, "tests": {"s/t": {}, "s/u": {}}}}
    assert _judged(command, 4) == 10 * 2 * 4 * 2 * 5.0, "every answer, every term's test, 5 s a command call"
    panel = {"kind": "panel", "judges": [{"kind": "command"}, {"kind": "openai"}]}
    assert _judged({"train": train, "reward_judge": {"judge": panel, "tests": {"s/t": {}}}}, 4) == 80 * 8.0
    assert _judged({"train": train}, 4) == 0.0
