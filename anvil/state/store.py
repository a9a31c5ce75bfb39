"""The content-addressed store and the state file.

.anvil/
  state.json             which record each stage of the recipe currently points at (versioned)
  records/<fp>.json      the run-cache: one record per fingerprint ever built
  artifacts/<fp>/        a stage's outputs, renamed in whole once the stage has finished
  tmp/                   stages in flight; anything here after a crash is debris
  cache.json             stat cache (size, mtime_ns, inode -> sha256) and facts learnt from hashes
  lock                   held during apply
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from anvil.errors import AnvilError
from anvil.state.atomic import fsync_dir, fsync_tree, write_json
from anvil.state.hashing import StatCache
from anvil.state.lock import store_lock

STATE_FORMAT = 1


class StageRecord(BaseModel):
    """What a finished stage was built from and what it produced; the planner diffs against it."""

    id: str
    kind: str
    fingerprint: str
    code_version: int
    config: dict[str, Any]
    inputs: dict[str, str] = Field(description="Fingerprints of the stages it needed, by stage id.")
    files: dict[str, str] = Field(description="Digests of the files it read, by path as the recipe writes it.")
    outputs: str = Field(description="Digest of its artifact folder, to notice edits made outside anvil.")
    started: str
    duration_s: float
    metrics: dict[str, Any] = {}


class Store:
    def __init__(self, root: Path):
        self.root = root
        self.state_file = root / "state.json"
        self.hashes = StatCache(root / "cache.json")

    # -- state ---------------------------------------------------------------------------------
    def load_state(self) -> dict[str, StageRecord]:
        if not self.state_file.exists():
            return {}
        try:
            raw = json.loads(self.state_file.read_text())
        except (OSError, ValueError) as e:
            raise AnvilError(f"{self.state_file}: unreadable state ({e}); move it aside to start over") from None
        if raw.get("format") != STATE_FORMAT:
            raise AnvilError(
                f"{self.state_file}: state format {raw.get('format')} is not {STATE_FORMAT} "
                "(written by another anvil version)"
            )
        return {sid: StageRecord.model_validate(rec) for sid, rec in raw["stages"].items()}

    def save_state(self, records: dict[str, StageRecord]) -> None:
        stages = {sid: rec.model_dump() for sid, rec in sorted(records.items())}
        write_json(self.state_file, {"format": STATE_FORMAT, "stages": stages})

    # -- run-cache -----------------------------------------------------------------------------
    def artifact(self, fingerprint: str) -> Path:
        return self.root / "artifacts" / fingerprint

    def cached(self, fingerprint: str) -> StageRecord | None:
        """The record of an intact artifact built earlier under this fingerprint, if there is one."""
        path = self.root / "records" / f"{fingerprint}.json"
        if not (path.exists() and self.artifact(fingerprint).is_dir()):
            return None
        record = StageRecord.model_validate_json(path.read_text())
        return record if self.intact(record) else None

    def intact(self, record: StageRecord) -> bool:
        folder = self.artifact(record.fingerprint)
        return folder.is_dir() and self.hashes.tree(folder) == record.outputs

    def new_workdir(self, stage_id: str) -> Path:
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.root / "tmp", prefix=f"{stage_id}."))

    def commit(self, workdir: Path, record: StageRecord) -> StageRecord:
        """Move a finished stage's folder into place under its fingerprint, then write its record."""
        fsync_tree(workdir)
        target = self.artifact(record.fingerprint)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # left by a crash before its record, or modified outside anvil: replace it
            shutil.rmtree(target)
        os.replace(workdir, target)
        fsync_dir(target.parent)
        # Hashed once, where it will stay: the stat cache is keyed by path.
        record = record.model_copy(update={"outputs": self.hashes.tree(target)})
        write_json(self.root / "records" / f"{record.fingerprint}.json", record.model_dump())
        return record

    def clear_debris(self) -> list[str]:
        """Remove stages left in flight by a killed apply (call only while holding the lock)."""
        tmp = self.root / "tmp"
        debris = sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []
        for name in debris:
            shutil.rmtree(tmp / name, ignore_errors=True)
        return debris

    def lock(self):
        return store_lock(self.root / "lock")

    # -- garbage collection --------------------------------------------------------------------
    def fingerprints(self) -> set[str]:
        folder = self.root / "artifacts"
        return {p.name for p in folder.iterdir()} if folder.exists() else set()

    def size(self, fingerprint: str) -> int:
        return sum(f.stat().st_size for f in self.artifact(fingerprint).rglob("*") if f.is_file())

    def remove(self, fingerprint: str) -> None:
        (self.root / "records" / f"{fingerprint}.json").unlink(missing_ok=True)
        shutil.rmtree(self.artifact(fingerprint), ignore_errors=True)
