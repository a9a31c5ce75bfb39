"""The content-addressed store: artifacts and run-cache records by fingerprint, shareable by every
project that points at it (ANVIL_STORE). It holds no project's state: see state/project_state.py.

<store>/
  artifacts/<fp>/        a stage's outputs, renamed in whole once the stage has finished
  records/<fp>.json      the run-cache: one record per fingerprint ever built
  scratch/<fp>/          a stage in flight's resumable work (checkpoints, finished transcripts)
  locks/<fp>.lock        held while a fingerprint is built, restored or collected, by any project
  tmp/<project>.*        work folders in flight; after a crash, debris its project clears
  cache/                 content-addressed results shared by stages (judge verdicts)
  projects/<id>.json     the projects known to use this store, so gc keeps what any of them refers to
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from anvil.errors import AnvilError
from anvil.planning.record import StageRecord
from anvil.state.atomic import fsync_dir, fsync_tree, write_json
from anvil.state.hashing import StatCache
from anvil.state.lock import is_held, waiting_lock


class ArtifactMismatch(AnvilError):
    """An artifact brought from elsewhere is not what its record says (corrupted or partial)."""


class Store:
    def __init__(self, root: Path, hashes: StatCache, owner: str):
        self.root = root
        self.hashes = hashes  # the project's stat cache: it is per machine, the store may not be
        self.owner = owner  # the project using this handle: names its work folders

    # -- run-cache -----------------------------------------------------------------------------
    def artifact(self, fingerprint: str) -> Path:
        return self.root / "artifacts" / fingerprint

    def scratch(self, fingerprint: str) -> Path:
        return self.root / "scratch" / fingerprint

    @property
    def shared_cache(self) -> Path:
        return self.root / "cache"

    def cached(self, fingerprint: str) -> StageRecord | None:
        """The record of an intact artifact built earlier under this fingerprint, if there is one."""
        path = self.root / "records" / f"{fingerprint}.json"
        if not (path.exists() and self.artifact(fingerprint).is_dir()):
            return None
        try:
            record = StageRecord.model_validate_json(path.read_text())
        except (OSError, ValidationError) as e:
            raise AnvilError(
                f"{path}: damaged run-cache record ({str(e).splitlines()[0]}); delete it, and the stage is built again"
            ) from None
        return record if self.intact(record) else None

    def intact(self, record: StageRecord) -> bool:
        folder = self.artifact(record.fingerprint)
        return folder.is_dir() and self.hashes.tree(folder) == record.outputs

    def new_workdir(self, stage_id: str) -> Path:
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^\w.=,()-]", "_", stage_id)  # no glob or shell character in a path others may glob
        return Path(tempfile.mkdtemp(dir=self.root / "tmp", prefix=f"{self.owner}.{safe}."))

    def commit(self, workdir: Path, record: StageRecord, verify: bool = False) -> StageRecord:
        """Move a finished stage's folder into place under its fingerprint, then write its record; its
        scratch is done with. `verify`: the folder must have the digest `record.outputs` says (an artifact
        from elsewhere), or it is removed and ArtifactMismatch raised before any record is written. Call
        while holding `claim(record.fingerprint)`."""
        fsync_tree(workdir)
        target = self.artifact(record.fingerprint)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # left by a crash before its record, or modified outside anvil: replace it
            shutil.rmtree(target)
        os.replace(workdir, target)
        fsync_dir(target.parent)
        # Hashed once, where it will stay: the stat cache is keyed by path.
        digest = self.hashes.tree(target)
        if verify and digest != record.outputs:
            shutil.rmtree(target)
            raise ArtifactMismatch(record.fingerprint)
        record = record.model_copy(update={"outputs": digest})
        write_json(self.root / "records" / f"{record.fingerprint}.json", record.model_dump(mode="json"))
        shutil.rmtree(self.scratch(record.fingerprint), ignore_errors=True)
        return record

    def clear_debris(self) -> list[str]:
        """Remove this project's work folders left in flight by a killed apply (call only while holding
        the project's lock); other projects' folders in flight are theirs."""
        tmp = self.root / "tmp"
        debris = sorted(p.name for p in tmp.glob(f"{self.owner}.*")) if tmp.exists() else []
        for name in debris:
            shutil.rmtree(tmp / name, ignore_errors=True)
        return debris

    # -- one builder per fingerprint, across projects ------------------------------------------
    def claim(self, fingerprint: str, on_wait: Callable[[], None] = lambda: None):
        """Hold a fingerprint while building, restoring or collecting it; waits while another project
        holds it and yields whether it had to (the other may have built it in the meantime)."""
        return waiting_lock(self._lock(fingerprint), on_wait)

    def busy(self, fingerprint: str) -> bool:
        """Whether some process holds the fingerprint right now (gc leaves it alone)."""
        return is_held(self._lock(fingerprint))

    def _lock(self, fingerprint: str) -> Path:
        return self.root / "locks" / f"{fingerprint}.lock"

    # -- the projects that use this store --------------------------------------------------------
    def register(self, project_id: str, recipe: Path, state_file: Path) -> None:
        entry = self.root / "projects" / f"{project_id}.json"
        wanted = {"recipe": str(recipe), "state": str(state_file)}
        if not entry.exists() or json.loads(entry.read_text()) != wanted:
            write_json(entry, wanted)

    def known_projects(self) -> dict[str, Path]:
        """Project id -> state file of every project registered here whose state still exists; entries
        of projects whose state is gone are forgotten."""
        folder = self.root / "projects"
        known = {}
        for entry in sorted(folder.glob("*.json")) if folder.exists() else []:
            try:
                state = Path(json.loads(entry.read_text())["state"])
            except (OSError, ValueError, KeyError, TypeError):
                raise AnvilError(f"{entry}: unreadable project entry; delete it if that project is gone") from None
            if state.exists():
                known[entry.stem] = state
            else:
                entry.unlink(missing_ok=True)
        return known

    # -- garbage collection --------------------------------------------------------------------
    def fingerprints(self) -> set[str]:
        """Fingerprints with an artifact or a scratch folder (a stage stopped half-way) in the store."""
        return {
            p.name
            for kind in ("artifacts", "scratch")
            if (self.root / kind).exists()
            for p in (self.root / kind).iterdir()
        }

    def size(self, fingerprint: str) -> int:
        folders = (self.artifact(fingerprint), self.scratch(fingerprint))
        return sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file())

    def remove(self, fingerprint: str) -> None:
        """Call while holding `claim(fingerprint)`."""
        (self.root / "records" / f"{fingerprint}.json").unlink(missing_ok=True)
        shutil.rmtree(self.artifact(fingerprint), ignore_errors=True)
        shutil.rmtree(self.scratch(fingerprint), ignore_errors=True)
