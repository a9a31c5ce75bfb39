"""One project's own state, kept beside its recipe and never shared: which record each of its stages
points at, the lock one apply holds, its stat cache and its logs. Two recipes using one store never see
each other's state, so one can neither orphan, stop nor collect the other's work.

<recipe folder>/.anvil/state/<recipe file name>/
  state.json     stage id -> record (versioned), written atomically
  lock           held during apply, gc and down (flock: released when its holder dies)
  hashes.json    stat cache (size, mtime_ns, inode -> sha256) and facts learnt from hashes; per machine
  logs/          servers and trainers started for this project
  processes/<id>/  a ledger of the processes this project started (see backends/process.py)
  names/         links that give each model a server loads its stable name (`v2`, not a store path)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import ValidationError

from anvil.errors import AnvilError, first_error
from anvil.planning.record import StageRecord
from anvil.state import state_folder
from anvil.state.atomic import write_json
from anvil.state.hashing import StatCache
from anvil.state.lock import store_lock

STATE_FORMAT = 2


class ProjectState:
    def __init__(self, recipe: Path):
        self.recipe = recipe.resolve()
        self.folder = state_folder(self.recipe)
        self.file = self.folder / "state.json"
        # Names the project in the shared store: its work folders and its entry for gc.
        self.id = hashlib.sha256(str(self.recipe).encode()).hexdigest()[:16]
        self.hashes = StatCache(self.folder / "hashes.json")
        self.logs = self.folder / "logs"
        # By id: a copy of this folder (another project) must not take these processes for its own.
        self.processes = self.folder / "processes" / self.id
        self.names = self.folder / "names"

    def load(self) -> dict[str, StageRecord]:
        return load_records(self.file)

    def save(self, records: dict[str, StageRecord]) -> None:
        stages = {sid: rec.model_dump(mode="json") for sid, rec in sorted(records.items())}
        write_json(self.file, {"format": STATE_FORMAT, "stages": stages})

    def lock(self):
        return store_lock(self.folder / "lock")


def load_records(file: Path) -> dict[str, StageRecord]:
    """The records of a state file (this project's or, for gc, another's); none if it does not exist."""
    if not file.exists():
        return {}
    recover = "move it aside to start over (finished artifacts stay in the store and are restored)"
    try:
        raw = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        raise AnvilError(f"{file}: unreadable state ({e}); {recover}") from None
    if not isinstance(raw, dict):
        raise AnvilError(f"{file}: not an Anvil state file (expected a JSON object); {recover}")
    if raw.get("format") != STATE_FORMAT:
        raise AnvilError(
            f"{file}: state format {raw.get('format')} is not {STATE_FORMAT} "
            f"(written by another anvil version); {recover}"
        )
    stages = raw.get("stages")
    if not isinstance(stages, dict):
        raise AnvilError(f"{file}: damaged state (no `stages` table); {recover}")
    records = {}
    for sid, rec in stages.items():
        try:
            records[sid] = StageRecord.model_validate(rec)
        except ValidationError as e:
            where, said = first_error(e)
            raise AnvilError(f"{file}: damaged state: stages.{sid}.{where or 'record'}: {said}; {recover}") from None
    return records
