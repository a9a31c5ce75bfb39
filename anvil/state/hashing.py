"""Content hashes of files and folders, trusted afterwards by (size, mtime_ns, inode) like DVC's stat
cache: a no-change plan over tens of GB of weights costs a few stat calls, not a rehash."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from anvil.errors import AnvilError
from anvil.state.atomic import write_json

CHUNK = 8 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class StatCache:
    """Digests of files (sha256) and folders (sha256 over sorted relative paths and file digests)."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self.entries: dict[str, list] = {}
        # Facts learnt from a content hash, e.g. "rows:<digest>" -> valid row count of a checked file.
        self.facts: dict[str, Any] = {}  # what was learnt of a content digest: row counts, contamination
        self.dirty = False
        if path and path.exists():
            try:
                saved = json.loads(path.read_text())
                entries, facts = saved["files"], saved["facts"]
                if isinstance(entries, dict) and isinstance(facts, dict):
                    self.entries, self.facts = entries, facts
            except (OSError, ValueError, KeyError, TypeError):
                pass  # a damaged cache only costs a rehash

    def file(self, path: Path) -> str:
        try:
            return self._file(path)
        except OSError as e:
            raise AnvilError(f"{path}: cannot read it to hash it ({e.strerror or e})") from None

    def _file(self, path: Path) -> str:
        st = os.stat(path)
        key = str(Path(path).resolve())
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        entry = self.entries.get(key)
        if isinstance(entry, list) and len(entry) == 4 and entry[:3] == stamp and isinstance(entry[3], str):
            return entry[3]
        digest = sha256_file(path)
        self.entries[key] = stamp + [digest]
        self.dirty = True
        return digest

    def tree(self, root: Path) -> str:
        if root.is_file():
            return self.file(root)
        h = hashlib.sha256()
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                full = Path(folder, name)
                h.update(f"{full.relative_to(root).as_posix()}\0{self.file(full)}\n".encode())
        return h.hexdigest()

    def save(self) -> None:
        """Write the cache back; one that cannot be written (a folder in its place) only costs a rehash next
        time, so it never fails the command that learnt it."""
        if self.path and self.dirty:
            live = {k: v for k, v in self.entries.items() if os.path.exists(k)}
            with contextlib.suppress(OSError):
                write_json(self.path, {"format": 1, "files": live, "facts": self.facts})
            self.dirty = False
