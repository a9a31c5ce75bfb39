"""Judges, tools, scores and suite validation: pure logic and real judge subprocesses."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from anvil.errors import InvalidInput
from anvil.evaluation.judges import JudgeError, Judging, parse_score, rules_verdict
from anvil.evaluation.scores import check_gates, deltas, metric, summarize
from anvil.evaluation.tools import calculate, run_tool
from anvil.recipe.evaluation import Gate, Judge
from anvil.recipe.suite import SuiteTest, load_suite


def transcript(final: str, tools: list[str] = ()) -> dict:
    return {
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": final}],
        "final": final,
        "tools_called": list(tools),
        "turn_limit_hit": False,
    }


TEST = SuiteTest.model_validate(
    {
        "id": "t",
        "category": "c",
        "turns": ["q"],
        "rubric": "be good",
        "tools": ["calculator", "search", "memory_search"],
        "documents": [{"title": "Heron memo", "text": "EBITDA 18m"}],
        "memory": ["hurdle rate is 8%"],
        "checks": [
            {"kind": "contains", "value": "391"},
            {"kind": "tool_called", "value": "calculator"},
            {"kind": "regex", "value": "^17"},
            {"kind": "max_length", "length": 20},
            {"kind": "json_schema", "schema": {"type": "object"}},
        ],
    }
)


@pytest.mark.parametrize(
    "text, score",
    [
        ('{"score": 4, "rationale": "fine"}', 4.0),
        ('Sure.\n{"score": 2.5, "rationale": "meh"} done', 2.5),
        ("Score: 3", 3.0),
        ("score = 0", 0.0),
    ],
)
def test_parse_score(text, score):
    assert parse_score(text)[0] == score


@pytest.mark.parametrize("text", ["I liked it", '{"score": 7}', "score: -1", ""])
def test_unparseable_or_out_of_range_scores_are_errors(text):
    with pytest.raises(JudgeError):
        parse_score(text)


def test_rules_judge_maps_checks_to_0_5():
    verdict = rules_verdict(TEST, transcript("17 * 23 = 391", ["calculator"]))
    assert verdict.score == 4.0 and "FAIL json_schema" in verdict.rationale
    assert rules_verdict(TEST, transcript("no")).score == 1.0  # only max_length holds


def test_calculator_is_safe_and_exact():
    assert calculate("17 * 23") == "391" and calculate("(1 + 2) ** 3 / 9") == "3"
    assert calculate("__import__('os').system('true')").startswith("error: unsupported")
    assert calculate("2 ** 10000").startswith("error") and calculate("1/0") == "error: division by zero"


def test_tools_answer_from_the_test_and_never_raise():
    assert run_tool(TEST, "calculator", '{"expression": "2+3"}') == "5"
    assert "18m" in run_tool(TEST, "search", {"query": "Heron EBITDA"})
    assert "8%" in run_tool(TEST, "memory_search", {"query": "hurdle rate"})
    assert run_tool(TEST, "search", {"query": "osprey"}) == "no results"
    assert run_tool(TEST, "calculator", "{not json").startswith("error: arguments are not JSON")
    assert run_tool(TEST, "shell", {}).startswith("error: no tool named 'shell'")


def script(tmp_path, body: str) -> list[str]:
    path = tmp_path / "judge.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def judging(tmp_path, argv, timeout=5.0):
    judge = Judge(kind="command", argv=argv, timeout_s=timeout, retries=2)
    return Judging(judge, tmp_path / "cache", retries=2, backoff_s=0.01)


def test_command_judge_scores_and_caches_by_content(tmp_path):
    calls = tmp_path / "calls"
    argv = script(
        tmp_path,
        f"""
        import sys, json
        prompt = sys.stdin.read()
        open({str(calls)!r}, "a").write("x")
        print(json.dumps({{"score": 4 if "be good" in prompt else 0, "rationale": "read the rubric"}}))
    """,
    )
    judge = judging(tmp_path, argv)
    first = judge(TEST, transcript("391"))
    again = judging(tmp_path, argv)(TEST, transcript("391"))
    other = judge(TEST, transcript("392"))
    assert (first.score, first.cached, again.cached, other.cached) == (4.0, False, True, False)
    assert calls.read_text() == "xx", "an unchanged transcript is never judged twice"


@pytest.mark.parametrize(
    "body, error",
    [
        ("import time; time.sleep(10)", "timed out after 0.5s"),
        ("print('I would give it a solid B+')", "no score in the judge's answer"),
        ("import sys; print('boom', file=sys.stderr); sys.exit(3)", "exited with code 3: boom"),
    ],
)
def test_failing_judges_are_retried_then_reported_never_raised(tmp_path, body, error):
    judge = judging(tmp_path, script(tmp_path, body), timeout=0.5)
    verdict = judge(TEST, transcript("391"))
    assert verdict.score is None and "after 2 attempts" in verdict.error and error in verdict.error
    assert judge.calls == 2
    assert not list(tmp_path.glob("cache/*")), "a failure is never cached"


def test_missing_judge_program_is_reported(tmp_path):
    verdict = judging(tmp_path, ["/nonexistent/judge"])(TEST, transcript("x"))
    assert "cannot run /nonexistent/judge" in verdict.error


def test_scores_categories_composite_deltas_and_variance():
    a = SuiteTest(id="a", category="x", turns=["q"], rubric="r", weight=2.0, gate=3.0)
    b = SuiteTest(id="b", category="y", turns=["q"], rubric="r")
    mine = summarize([a, b], {"a": [5.0, 1.0, 3.0], "b": [2.0, 2.0, 2.0]}, high_variance=2.0)
    assert mine.tests["a"].mean == 3.0 and mine.tests["a"].high_variance
    assert not mine.tests["b"].high_variance
    assert mine.categories == {"x": 3.0, "y": 2.0} and mine.composite == round((3 * 2 + 2) / 3, 3)
    base = summarize([a, b], {"a": [1.0] * 3, "b": [1.0] * 3}, 2.0)
    mine = mine.model_copy(update={"delta_vs_base": deltas(mine, base)})
    suites = {"behavioral": mine}
    assert metric(suites, "behavioral.delta_vs_base") == round(mine.composite - 1.0, 3)
    assert metric(suites, "behavioral.category.y") == 2.0 and metric(suites, "behavioral.test.a") == 3.0
    assert metric(suites, "nope.composite") is None
    results = check_gates(suites, [Gate(model="v2", metric="behavioral.composite", min=4.0)])
    expected = [("behavioral.composite", False), ("behavioral.test.a", True)]
    assert [(r["metric"], r["passed"]) for r in results] == expected


def test_suite_files_are_validated_with_locations(tmp_path):
    (tmp_path / "ok.toml").write_text('category = "c"\nturns = ["hi"]\nrubric = "r"\n')
    (tmp_path / "bad.toml").write_text(
        'category = "c"\nturns = ["hi"]\nrubric = "r"\ntools = ["shell"]\n\n[[checks]]\nkind = "regex"\nvalue = "("\n'
        '\n[[checks]]\nkind = "contains"\nvalu = "x"\n'
    )
    with pytest.raises(InvalidInput) as caught:
        load_suite(tmp_path, "suite")
    messages = [str(p) for p in caught.value.problems]
    assert any(m.startswith(f"{tmp_path}/bad.toml:4:") and "tools[0]" in m for m in messages), messages
    assert any(":6:1: checks[0]: invalid regex '('" in m for m in messages), messages
    assert any(":12:1: checks[1].valu: unknown key (did you mean 'value'?)" in m for m in messages), messages


def test_shipped_suites_validate():
    from tests.conftest import REPO

    behavioral = load_suite(REPO / "evals" / "behavioral", "evals/behavioral")
    assert len(behavioral) == 33
    assert {t.category for t in behavioral} == {"edge_cases", "tool_use", "conversational", "voice", "domain"}
    assert {"tool_multi_step", "tool_memory_recall", "voice_casual", "edge_contradiction"} <= {t.id for t in behavioral}
    tiny = load_suite(REPO / "evals" / "tiny", "evals/tiny")
    assert all(t.checks for t in tiny), "the tiny suite is scored offline by rules"
    json.dumps([t.model_dump() for t in tiny])


def test_openai_judge_calls_an_openai_compatible_endpoint(tmp_path, monkeypatch):
    """A real HTTP endpoint on loopback that speaks the chat-completions format."""
    from tests.conftest import chat_endpoint

    with chat_endpoint(lambda body: '{"score": 3.5, "rationale": "ok"}') as (port, requests):
        monkeypatch.setenv("JUDGE_KEY", "k")
        url = f"http://127.0.0.1:{port}/v1"
        judge = Judge(kind="openai", url=url, model="grader", api_key_env="JUDGE_KEY")
        verdict = Judging(judge, tmp_path / "cache")(TEST, transcript("391"))
        [request] = requests
        seen = {
            "path": request["path"],
            "auth": request["headers"].get("Authorization"),
            "model": request["body"]["model"],
        }
        assert (verdict.score, verdict.rationale) == (3.5, "ok")
        assert seen == {"path": "/v1/chat/completions", "auth": "Bearer k", "model": "grader"}
        monkeypatch.delenv("JUDGE_KEY")
        missing = Judging(judge, tmp_path / "other", retries=1)(TEST, transcript("392"))
        assert "JUDGE_KEY (the judge's API key) is not set" in missing.error


def test_openai_judge_reports_the_refusal_and_retries_only_what_may_pass(tmp_path):
    from tests.conftest import chat_endpoint

    refused = Judge(kind="openai", url="http://127.0.0.1:1/v1", model="grader")
    with chat_endpoint(lambda body: "invalid model 'grader'", status=lambda n: 400) as (port, requests):
        judge = refused.model_copy(update={"url": f"http://127.0.0.1:{port}/v1"})
        verdict = Judging(judge, tmp_path / "a", retries=3, backoff_s=0.01)(TEST, transcript("391"))
        assert len(requests) == 1, "a 400 fails the same way every time: not retried"
        assert "HTTP 400" in verdict.error and "invalid model 'grader'" in verdict.error
    busy = lambda n: 429 if n == 1 else 200  # noqa: E731
    with chat_endpoint(lambda body: '{"score": 2, "rationale": "ok"}', status=busy) as (port, requests):
        judge = refused.model_copy(update={"url": f"http://127.0.0.1:{port}/v1"})
        verdict = Judging(judge, tmp_path / "b", retries=3, backoff_s=0.01)(TEST, transcript("391"))
        assert len(requests) == 2 and verdict.score == 2.0, "a 429 is asked again"


@pytest.mark.parametrize(
    "expression",
    ["(10**64)**64", "(-8)**(1/3)", "1e308*10", "-" * 100000 + "1", "9" * 5000 + " * 2", "((" * 300 + "1" + "))" * 300],
)
def test_the_calculator_answers_any_expression_with_text(expression):
    assert calculate(expression).startswith("error") and run_tool(TEST, "calculator", {"expression": expression})


def test_a_panel_combines_its_judges_and_keeps_each_score(tmp_path):
    """Three judges (a program scoring 1, one scoring 4, the rules), by median and by mean; each judge cached
    under its own identity, a repeat is a judgement of its own, and one judge's failure fails the verdict."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    low = script(tmp_path / "a", 'import json; print(json.dumps({"score": 1, "rationale": "low"}))')
    high = script(tmp_path / "b", 'import json; print(json.dumps({"score": 4, "rationale": "high"}))')
    members = [{"kind": "command", "argv": low}, {"kind": "command", "argv": high}, {"kind": "rules"}]
    panel = Judge.model_validate({"kind": "panel", "judges": members})
    judged = Judging(panel, tmp_path / "cache", retries=1, backoff_s=0.01)(TEST, transcript("391", ["calculator"]))
    rules = rules_verdict(TEST, transcript("391", ["calculator"])).score
    assert judged.panel == (1.0, 4.0, rules) and judged.score == sorted([1.0, 4.0, rules])[1], judged
    assert "low" in judged.rationale and "high" in judged.rationale
    mean = Judge.model_validate({"kind": "panel", "judges": members, "combine": "mean"})
    again = Judging(mean, tmp_path / "cache", retries=1, backoff_s=0.01)
    assert again(TEST, transcript("391", ["calculator"])).score == pytest.approx((5 + rules) / 3)
    assert again.counts == (0, 2), "each judge's verdict is cached under its own identity"
    assert again(TEST, transcript("391", ["calculator"]), repeat=1).cached is False
    broken = {
        "kind": "panel",
        "judges": [{"kind": "command", "argv": [sys.executable, "-c", "raise SystemExit(3)"]}, {"kind": "rules"}],
    }
    failed = Judging(Judge.model_validate(broken), tmp_path / "cache", retries=1, backoff_s=0.01)(TEST, transcript("x"))
    assert failed.score is None and failed.error and failed.error.startswith("command python")


@pytest.mark.parametrize(
    "bad, expect",
    [
        ({"kind": "panel"}, "a panel judge needs judges"),
        ({"kind": "panel", "judges": [{"kind": "rules"}]}, "at least 2"),
        ({"kind": "rules", "judges": [{"kind": "rules"}, {"kind": "rules"}]}, "only a panel has them"),
        (
            {"kind": "panel", "judges": [{"kind": "rules"}, {"kind": "panel", "judges": [{"kind": "rules"}] * 2}]},
            "not panels",
        ),
    ],
)
def test_a_panel_is_checked_when_the_recipe_is_read(bad, expect):
    with pytest.raises(ValueError, match=expect):
        Judge.model_validate(bad)
