"""Asking a judge: a program given the prompt on stdin (`command`, e.g. `claude -p`) or an OpenAI-compatible
endpoint (`openai`). Each returns the judge's text, or raises JudgeError saying whether asking again may
help; evaluation/judges.py caches, retries and scores."""

from __future__ import annotations

import subprocess
import urllib.error

from anvil.backends import openai_api, process
from anvil.errors import AnvilError
from anvil.recipe.evaluation import Judge


class JudgeError(Exception):
    """A judge call that failed or answered something without a score; `retry`: whether asking again may help."""

    def __init__(self, message: str, retry: bool = True):
        super().__init__(message)
        self.retry = retry


def ask_command(judge: Judge, prompt: str, cwd: str | None = None) -> str:
    """The command's answer, run in `cwd` (None: this process's folder, which a recipe's relative argv means)."""
    argv = judge.argv or []  # the model requires argv for this kind
    try:
        done = process.run(argv, prompt, judge.timeout_s, cwd)
    except subprocess.TimeoutExpired:
        raise JudgeError(f"{argv[0]} timed out after {judge.timeout_s:g}s") from None
    except OSError as e:
        raise JudgeError(f"cannot run {argv[0]}: {e}") from None
    if done.returncode != 0:
        raise JudgeError(f"{argv[0]} exited with code {done.returncode}: {done.stderr.strip()[-300:]}")
    return done.stdout


def ask_openai(judge: Judge, prompt: str, cwd: str | None = None) -> str:
    try:
        key = openai_api.key_from_environment(judge.api_key_env, "eval.judge.api_key_env", "the judge's")
    except AnvilError as e:
        raise JudgeError(str(e), retry=False) from None
    body = {"model": judge.model, "messages": [{"role": "user", "content": prompt}], "temperature": 0}
    try:
        reply = openai_api.chat_completion(judge.url or "", body, openai_api.bearer(key), judge.timeout_s)
        content = reply["choices"][0]["message"]["content"]
    except urllib.error.HTTPError as e:
        said = e.read().decode(errors="replace").strip()[:300]
        # A request the endpoint refuses (bad key, unknown model) fails the same way every time.
        retry = e.code in (408, 429) or e.code >= 500
        raise JudgeError(f"{judge.url}: HTTP {e.code}: {said or e.reason}", retry=retry) from None
    except (urllib.error.URLError, OSError, KeyError, IndexError, TypeError, ValueError) as e:
        raise JudgeError(f"{judge.url}: {e}") from None
    if not isinstance(content, str):
        raise JudgeError(f"{judge.url}: the answer has no text content")
    return content
