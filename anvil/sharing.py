"""The project's use of a shared remote store: lookups for the planner and pulls for the executor that
degrade to "not there" when the remote is down (one warning, and local work goes on), and the `push` and
`pull` commands. The remote itself is state/remote.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from anvil.errors import AnvilError
from anvil.planning.plan import Act
from anvil.planning.record import StageRecord
from anvil.state.remote import Remote, RemoteError
from anvil.state.store import Store


@dataclass
class Transfer:
    moved: list[str] = field(default_factory=list)  # fingerprints pushed or pulled
    present: list[str] = field(default_factory=list)  # already on the other side
    failed: list[str] = field(default_factory=list)  # one line each
    bytes: int = 0
    seconds: float = 0.0


@dataclass
class Shared:
    remote: Remote | None
    warnings: list[str] = field(default_factory=list)
    down: bool = False

    def _note(self, error: RemoteError) -> None:
        self.down = True
        self.warnings.append(f"{error}; going on without the remote store")

    def has(self, fingerprint: str) -> bool:
        if self.remote is None or self.down:
            return False
        try:
            return self.remote.has(fingerprint)
        except RemoteError as e:
            self._note(e)
            return False

    def fetch(self, store: Store) -> Callable[[str], StageRecord | None]:
        def fetch(fingerprint: str) -> StageRecord | None:
            if self.remote is None:
                return None
            try:
                return self.remote.pull(store, fingerprint)
            except RemoteError as e:
                self.warnings.append(f"{e}; built here instead")
                return None

        return fetch

    def push(self, store: Store, records: Iterable[StageRecord]) -> Transfer:
        assert self.remote is not None
        done, t0 = Transfer(), time.monotonic()
        for record in records:
            if not store.intact(record):
                continue
            with store.claim(record.fingerprint):  # gc must not collect it while it uploads
                if self.remote.push(store, record):
                    done.moved.append(record.fingerprint)
                    done.bytes += store.size(record.fingerprint)
                else:
                    done.present.append(record.fingerprint)
        done.seconds = time.monotonic() - t0
        return done

    def pull(self, store: Store, fingerprints: Iterable[str]) -> Transfer:
        assert self.remote is not None
        done, t0 = Transfer(), time.monotonic()
        for fingerprint in fingerprints:
            with store.claim(fingerprint):
                if store.cached(fingerprint) is not None:
                    done.present.append(fingerprint)
                    continue
                try:
                    record = self.remote.pull(store, fingerprint)
                except RemoteError as e:
                    done.failed.append(str(e))
                    continue
                done.moved.append(record.fingerprint)
                done.bytes += store.size(record.fingerprint)
        done.seconds = time.monotonic() - t0
        return done


def _remote_of(project, recipe: str) -> tuple[Shared, Remote]:
    if project.shared.remote is None:
        raise AnvilError(f"{recipe}: no remote store (set [store] remote in the recipe, or ANVIL_REMOTE)")
    return project.shared, project.shared.remote


def push_all(project, recipe: str) -> tuple[Transfer, str]:
    """`anvil push`: every artifact the project's state records (not its running server) the remote lacks."""
    shared, remote = _remote_of(project, recipe)
    records = [r for sid, r in project.state.load().items() if sid in project.graph.nodes
               and not project.graph.nodes[sid].resource]  # fmt: skip
    return shared.push(project.store, records), remote.url


def pull_needed(project, recipe: str) -> tuple[Transfer, str]:
    """`anvil pull`: what the plan would restore from the remote, into the local run-cache (the next apply
    restores it from there)."""
    shared, remote = _remote_of(project, recipe)
    wanted = [a.fingerprint for a in project.plan().actions if a.act is Act.RESTORE and "remote" in a.reasons[-1]]
    return shared.pull(project.store, wanted), remote.url
