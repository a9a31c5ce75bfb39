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
    fingerprints of the stages it needs by the role they play (`inputs`: "parent", "dataset" ...; not
    their ids) and the content of the files it reads. Not its id either: two stages
    with the same inputs share one artifact. Not how a file's path is spelt either: the same data read
    as `data/x.jsonl` by one recipe and `../data/x.jsonl` by another is one input."""
    if not files:
        return digest(
            {"kind": node.kind, "code": node.code_version, "config": node.settings, "inputs": inputs, "files": {}}
        )
    return digest(
        {
            "kind": node.kind,
            "code": node.code_version,
            "config": by_content(node.settings, files),
            "inputs": inputs,
            "files": sorted(files.values()),
        }
    )


def by_content(value: Any, files: dict[str, str]) -> Any:
    """The settings with every value that names a file the stage reads (`path`, or `path:<path>`) replaced
    by that file's digest."""
    if isinstance(value, dict):
        return {key: by_content(item, files) for key, item in value.items()}
    if isinstance(value, list):
        return [by_content(item, files) for item in value]
    if isinstance(value, str):
        scheme, colon, rest = value.rpartition("path:")
        if value in files:
            return {"content": files[value]}
        if colon and not scheme and rest in files:
            return {"path content": files[rest]}
    return value
