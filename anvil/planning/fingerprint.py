"""Fingerprints: sha256 of canonical JSON (sorted keys, no whitespace), like DVC's dict_sha256."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from anvil.planning.graph import Node


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def fingerprint(node: Node, inputs: dict[str, str], files: dict[str, str]) -> str:
    """Everything that decides a stage's output: its kind and code version, its resolved config, the
    fingerprints of the stages it needs and the content of the files it reads. Not its id: two stages
    with the same inputs share one artifact."""
    return digest(
        {"kind": node.kind, "code": node.code_version, "config": node.settings, "inputs": inputs, "files": files}
    )
