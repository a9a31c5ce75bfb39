"""The one client of OpenAI-compatible servers (mlx-vlm's, a judge's endpoint): a chat completion, a health
probe, the bearer header and an API key read from the environment. Standard library only."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any, NamedTuple

from anvil.errors import AnvilError


def bearer(api_key: str | None) -> dict[str, str]:
    """The request headers that carry an API key, if there is one."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def key_from_environment(variable: str | None, setting: str, whose: str) -> str | None:
    """The API key in environment variable `variable` (None: no key); the error names the recipe's `setting`
    and `whose` key it is when the variable is not set."""
    if variable is None:
        return None
    key = os.environ.get(variable)
    if not key:
        raise AnvilError(f"{setting}: environment variable {variable} ({whose} API key) is not set")
    return key


def answers(url: str, headers: dict[str, str], timeout: float = 2.0) -> bool:
    """Whether a server answers 200 on `url` (its health URL) within `timeout`."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def get_json(url: str, headers: dict[str, str], timeout: float = 2.0) -> Any:
    """GET `url` as JSON; None when the server does not answer it with JSON (an older server, a timeout)."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def chat_completion(base_url: str, body: dict[str, Any], headers: dict[str, str], timeout: float) -> dict[str, Any]:
    """POST `body` to `{base_url}/chat/completions` (base_url ends in /v1); the reply as JSON. urllib's errors
    (HTTPError with its code, URLError, timeouts) are the caller's to word."""
    with urllib.request.urlopen(_chat_request(base_url, body, headers), timeout=timeout) as response:
        return json.loads(response.read())


def _chat_request(base_url: str, body: dict[str, Any], headers: dict[str, str]) -> urllib.request.Request:
    return urllib.request.Request(
        base_url.rstrip("/") + "/chat/completions",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", **headers},
    )


class Streamed(NamedTuple):
    text: str  # up to the first stop sequence
    stopped: bool  # whether one was met
    chunks: int  # content chunks received: mlx-vlm's server streams one per generated token


def chat_until(
    base_url: str, body: dict[str, Any], headers: dict[str, str], timeout: float, stop: tuple[str, ...]
) -> Streamed:
    """A streamed chat completion, read until the first of the `stop` sequences and then hung up on: a
    server that takes OpenAI's `stop` ends there itself, and one that ignores it (mlx-vlm's) cancels the
    generation when its client goes (it closes the stream's token iterator), instead of spending the rest
    of `max_tokens`. The text before the stop sequence, whether one was met, and the chunks streamed."""
    request = _chat_request(base_url, {**body, "stream": True, "stop": list(stop)}, headers)
    text, longest, chunks = "", max((len(s) for s in stop), default=0), 0
    with urllib.request.urlopen(request, timeout=timeout) as response:
        for raw in response:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data:"))
            delta = ((chunk.get("choices") or [{}])[0].get("delta") or {}).get("content") or ""
            start = max(0, len(text) - longest)  # a stop sequence may straddle two chunks
            text, chunks = text + delta, chunks + bool(delta)
            found = [i for i in (text.find(s, start) for s in stop) if i >= 0]
            if found:
                return Streamed(text[: min(found)], True, chunks)
    return Streamed(text, False, chunks)
