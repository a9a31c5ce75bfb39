"""Judges score a transcript 0-5: `rules` (the test's deterministic checks), `command` (a program given
the judge prompt on stdin, e.g. `claude -p`), `openai` (an OpenAI-compatible endpoint); `JUDGES` is
their registry, by the recipe's `judge.kind`.

Judges that are asked (a program, an endpoint) are cached by content (judge identity + rubric +
transcript), so an unchanged output is never judged twice, and retried with backoff before a failure
is reported."""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anvil.backends import judge_calls
from anvil.backends.judge_calls import JudgeError
from anvil.evaluation.agent import render
from anvil.planning.fingerprint import digest
from anvil.recipe.evaluation import Judge, label
from anvil.recipe.suite import Check, Scoring
from anvil.state.atomic import write_json

PROMPT = """You are grading one conversation of an AI assistant against a rubric.

Rubric:
{rubric}

Conversation:
{transcript}

Score the assistant from 0 (fails the rubric entirely) to 5 (meets it fully); fractions are allowed.
Answer with one line of JSON and nothing else: {{"score": <0-5>, "rationale": "<one or two sentences>"}}"""


@dataclass(frozen=True)
class Verdict:
    score: float | None
    rationale: str
    error: str | None = None
    cached: bool = False
    panel: tuple[float, ...] = ()  # a panel's verdict: each of its judges' scores, in the recipe's order


def check_passes(check: Check, transcript: dict[str, Any]) -> bool:
    import jsonschema

    final = transcript["final"] or ""
    text, value = (final.lower(), (check.value or "").lower()) if check.ignore_case else (final, check.value or "")
    if check.kind == "contains":
        return value in text
    if check.kind == "not_contains":
        return value not in text
    if check.kind == "regex":
        return re.search(check.value or "", final, re.IGNORECASE if check.ignore_case else 0) is not None
    if check.kind == "tool_called":
        return check.value in transcript["tools_called"]
    if check.kind == "max_length":
        return len(final) <= (check.length or 0)
    if check.kind == "min_length":
        return len(final) >= (check.length or 0)
    try:
        jsonschema.validate(json.loads(final), check.schema_)
    except (json.JSONDecodeError, jsonschema.ValidationError):
        return False
    return True


def rules_verdict(test: Scoring, transcript: dict[str, Any]) -> Verdict:
    results = [(check, check_passes(check, transcript)) for check in test.checks]
    passed = sum(ok for _, ok in results)
    lines = [f"{'pass' if ok else 'FAIL'} {c.kind} {c.value or c.length or ''}".rstrip() for c, ok in results]
    return Verdict(round(5 * passed / len(results), 3), "; ".join(lines))


def parse_score(text: str) -> tuple[float, str]:
    """A score 0-5 from a judge's answer: a JSON object with `score` anywhere in it, or `score: N`."""
    for match in re.finditer(r"\{[^{}]*\}", text, re.DOTALL):
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and isinstance(data.get("score"), int | float):
            return _in_range(float(data["score"]), text), str(data.get("rationale", "")).strip()
    found = re.search(r"(?i)score\s*[:=]\s*(-?\d+(?:\.\d+)?)", text)
    if found:
        return _in_range(float(found.group(1)), text), text.strip()[:500]
    raise JudgeError(f'no score in the judge\'s answer: {text.strip()[:200]!r} (expected {{"score": 0-5, ...}})')


def _in_range(score: float, text: str) -> float:
    if not 0 <= score <= 5:
        raise JudgeError(f"score {score} is outside 0-5 in the judge's answer: {text.strip()[:200]!r}")
    return score


class Judging:
    """Scores transcripts with one judge, chosen from `JUDGES` by its kind."""

    def __init__(self, judge: Judge, cache: Path, retries: int = 3, backoff_s: float = 1.0, cwd: str | None = None):
        """`cwd`: where a command judge runs (None: here; a training child runs elsewhere and says where)."""
        self.judge, self.cache, self.retries, self.backoff_s, self.cwd = judge, cache, retries, backoff_s, cwd
        self.calls = self.hits = 0
        self._counting = threading.Lock()  # judges may be called from several threads at once
        # a panel's judges, each with its own identity, so its own cache entries
        self.members = [Judging(j, cache, j.retries, backoff_s, cwd) for j in judge.judges or []]

    @property
    def counts(self) -> tuple[int, int]:
        """(calls, cache hits), a panel's judges' included."""
        calls, hits = self.calls, self.hits
        for member in self.members:
            calls, hits = calls + member.calls, hits + member.hits
        return calls, hits

    def identity(self) -> dict[str, Any]:
        return self.judge.model_dump(mode="json", exclude={"timeout_s"})

    def __call__(self, test: Scoring, transcript: dict[str, Any], repeat: int = 0) -> Verdict:
        """The judge's verdict; `repeat` > 0 asks again (a judgement of its own, cached as such), for the
        judge's test-retest spread."""
        return JUDGES[self.judge.kind](self, test, transcript, repeat)

    def asked(
        self, ask: Callable[[Judge, str, str | None], str], test: Scoring, transcript: dict[str, Any], repeat: int = 0
    ) -> Verdict:
        """A verdict from a judge that is asked: from the content-addressed cache, or asked with retries."""
        identity = {"judge": self.identity(), "rubric": test.rubric, "transcript": transcript["messages"]}
        key = digest(identity | ({"repeat": repeat} if repeat else {}))
        path = self.cache / f"{key}.json"
        if path.exists():
            with self._counting:
                self.hits += 1
            saved = json.loads(path.read_text())
            return Verdict(saved["score"], saved["rationale"], cached=True)
        prompt = PROMPT.format(rubric=test.rubric, transcript=render(transcript))
        error = ""
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            with self._counting:
                self.calls += 1
            try:
                score, rationale = parse_score(ask(self.judge, prompt, self.cwd))
            except JudgeError as e:
                error = str(e)
                if not e.retry:
                    return Verdict(None, "", error=f"judge failed: {error}")
                continue
            write_json(path, {"score": score, "rationale": rationale})
            return Verdict(score, rationale)
        return Verdict(None, "", error=f"judge failed after {self.retries} attempts: {error}")


JudgeFunction = Callable[[Judging, Scoring, dict[str, Any], int], Verdict]


def panel_verdict(judging: Judging, test: Scoring, transcript: dict[str, Any], repeat: int) -> Verdict:
    """Every judge of the panel, combined by the mean or the median; one judge's failure fails the verdict."""

    verdicts = [member(test, transcript, repeat) for member in judging.members]
    for member, verdict in zip(judging.members, verdicts, strict=True):
        if verdict.error:
            return Verdict(None, "", error=f"{label(member.judge)}: {verdict.error}")
    scores = tuple(float(v.score or 0.0) for v in verdicts)
    combined = statistics.median(scores) if judging.judge.combine == "median" else statistics.fmean(scores)
    said = "; ".join(
        f"{label(m.judge)} {v.score:g}: {v.rationale}" for m, v in zip(judging.members, verdicts, strict=True)
    )
    return Verdict(combined, said, cached=all(v.cached for v in verdicts), panel=scores)


def _asked(ask: Callable[[Judge, str, str | None], str]) -> JudgeFunction:
    return lambda judging, test, transcript, repeat: judging.asked(ask, test, transcript, repeat)


# The judges, by `judge.kind`: each scores one transcript of one test (the n-th time: `repeat`).
JUDGES: dict[str, JudgeFunction] = {
    "rules": lambda judging, test, transcript, repeat: rules_verdict(test, transcript),
    "command": _asked(judge_calls.ask_command),
    "openai": _asked(judge_calls.ask_openai),
    "panel": panel_verdict,
}
