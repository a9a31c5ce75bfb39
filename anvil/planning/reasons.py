"""Why a recorded stage is stale: every changed field, file and input (`plan --json`, `plan --verbose`),
and a brief of them that fits a terminal line: a collection added or removed whole is one reason
("suites.behavioral added (32 entries)"), a collection with many changes is counted ("tests: 40
changed"), and the rest is capped ("and 3 more")."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from anvil.planning.graph import Node
from anvil.planning.record import StageRecord

BRIEF = 4  # reasons shown on a stage's line before "and N more"

Path = tuple[str, ...]  # a field's place in the config: ("sources", "[0]", "count")


def diff_reasons(node: Node, record: StageRecord, inputs: dict[str, str], files: dict[str, str]) -> list[str]:
    """Why a recorded stage is stale, down to the field, the file or the input."""
    return [text for _, text in changes(node, record, inputs, files)]


def brief_reasons(node: Node, record: StageRecord, found: list[tuple[Path, str]]) -> list[str]:
    """The reasons `changes` found, summarised by collection and capped at BRIEF."""
    old, new = _flatten(record.config), _flatten(node.settings)
    out: list[tuple[Path, str]] = []
    whole: set[Path] = set()  # subtrees added or removed whole, already in `out`
    for path, text in found:
        gone = _absent_from(path, old) if path in new else _absent_from(path, new) if path in old else None
        if gone is None or gone == path:
            out.append((path, text))
        elif gone not in whole:
            theirs = new if path in new else old
            entries = len({p[len(gone)] for p in theirs if p[: len(gone)] == gone and len(p) > len(gone)})
            whole.add(gone)
            out.append((gone, f"{_name(gone)} {'added' if path in new else 'removed'} ({_count(entries, 'entry')})"))
    if len(out) > BRIEF:
        groups = Counter(path[0] for path, _ in out if path)
        out = _grouped(out, {head for head, n in groups.items() if n > 1})
    texts = [text for _, text in out]
    return texts if len(texts) <= BRIEF else texts[: BRIEF - 1] + [f"and {len(texts) - BRIEF + 1} more"]


def changes(node: Node, record: StageRecord, inputs: dict[str, str], files: dict[str, str]) -> list[tuple[Path, str]]:
    """Every changed field (with its place in the config), file and input, each with its reason."""
    out: list[tuple[Path, str]] = []
    if record.code_version != node.code_version:
        out.append(((), f"stage code version {record.code_version} -> {node.code_version}"))
    old, new = _flatten(record.config), _flatten(node.settings)
    for key in list(new) + [k for k in old if k not in new]:
        if key not in old:
            out.append((key, f"{_name(key)} added ({_show(new[key])})"))
        elif key not in new:
            out.append((key, f"{_name(key)} removed (was {_show(old[key])})"))
        elif old[key] != new[key]:
            out.append((key, f"{_name(key)} {_show(old[key])} -> {_show(new[key])}"))
    for path in sorted(record.files.keys() | files.keys()):
        if path not in record.files:
            out.append(((), f"{path} added"))
        elif path not in files:
            out.append(((), f"{path} removed"))
        elif record.files[path] != files[path]:
            out.append(((), f"{path} changed"))
    for need in sorted(record.inputs.keys() | inputs.keys()):
        if record.inputs.get(need) != inputs.get(need):
            out.append(((), f"input {need} changed"))
    return out


def _absent_from(path: Path, other: dict[Path, Any]) -> Path | None:
    """The shortest head of `path` under which `other` has nothing: the subtree added (or removed) whole."""
    for end in range(1, len(path) + 1):
        head = path[:end]
        if not any(p[:end] == head for p in other):
            return head
    return None


def _grouped(out: list[tuple[Path, str]], heads: set[str]) -> list[tuple[Path, str]]:
    """Each collection in `heads` as one reason counting its changes, in the place of its first."""
    counts = Counter(path[0] for path, _ in out if path and path[0] in heads)
    grouped: list[tuple[Path, str]] = []
    for path, text in out:
        if path and path[0] in heads:
            if counts[path[0]]:
                grouped.append(((path[0],), f"{path[0]}: {counts[path[0]]} changed"))
                counts[path[0]] = 0
        else:
            grouped.append((path, text))
    return grouped


def _flatten(config: Any, prefix: Path = ()) -> dict[Path, Any]:
    """{"sources": [{"count": 6}]} -> {("sources", "[0]", "count"): 6}: reasons name the exact field."""
    if isinstance(config, dict) and config:
        out: dict[Path, Any] = {}
        for key, value in config.items():
            out.update(_flatten(value, (*prefix, str(key))))
        return out
    if isinstance(config, list) and config and all(isinstance(v, dict) for v in config):
        out = {}
        for i, value in enumerate(config):
            out.update(_flatten(value, (*prefix, f"[{i}]")))
        return out
    return {prefix: config}


def _name(path: Path) -> str:
    return "".join(part if part.startswith("[") or not i else f".{part}" for i, part in enumerate(path))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun if n == 1 else noun[:-1] + 'ies' if noun.endswith('y') else noun + 's'}"


def _show(value: Any, limit: int = 60) -> str:
    """A value in a reason, cut short: a changed suite test's turns should not fill the screen."""
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, float) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
