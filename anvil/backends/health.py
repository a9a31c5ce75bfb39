"""Whether a server answers on its health URL: standard library only, so that a replayed `plan`
(anvil/replay.py) can ask without importing the server's backend."""

from __future__ import annotations

import urllib.error
import urllib.request


def bearer(api_key: str | None) -> dict[str, str]:
    """The request headers that carry an API key, if there is one."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def answers(url: str, headers: dict[str, str], timeout: float = 2.0) -> bool:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False
