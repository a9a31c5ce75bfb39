"""A shared artifact store (`[store] remote`): an S3 bucket prefix or a shared folder, through fsspec
(s3fs for S3). The only module that knows about remotes.

Layout, content-addressed like the local store:

    REMOTE/records/<fingerprint>.json            the stage record, written last: the artifact is complete
    REMOTE/artifacts/<fingerprint>/<upload>/...  the artifact's files, one folder per push

Each push uploads into a folder of its own and then writes the record naming it, so two machines pushing
the same artifact at once never mix their files, and a reader never sees a half-uploaded artifact.
A pull downloads into the local store's work folder and checks the folder's digest against the record's
before the artifact is used: a corrupted or partial object is rejected, never used. Credentials come
only from the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...), never from the recipe."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from anvil.errors import AnvilError
from anvil.planning.record import StageRecord
from anvil.settings import environment
from anvil.state.store import ArtifactMismatch, Store


class RemoteError(AnvilError):
    """The remote cannot be reached or read; local work goes on without it."""


def remote_url(configured: str | None, recipe_root: Path) -> str | None:
    """The remote store to use: ANVIL_REMOTE, else the recipe's; a folder relative to the recipe's folder."""
    url = environment().remote or configured
    if url is None or url.startswith("s3://"):
        return url
    if "://" in url:
        raise AnvilError(f"{url}: remote stores are s3://BUCKET/PREFIX or a folder")
    return str((recipe_root / Path(url).expanduser()).resolve())


@cache
def _unreachable() -> tuple[type[BaseException], ...]:
    """The errors that mean "the remote cannot be reached or read now"; anything else is a bug of Anvil's and
    is raised as it is."""
    kinds: list[type[BaseException]] = [OSError, TimeoutError]
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        kinds += [BotoCoreError, ClientError]
    except ImportError:
        pass
    try:
        from aiohttp import ClientError as HttpError

        kinds.append(HttpError)
    except ImportError:
        pass
    return tuple(kinds)


class Remote:
    def __init__(self, url: str, endpoint_url: str | None = None):
        self.url, self.endpoint_url = url.rstrip("/"), endpoint_url
        self.s3 = url.startswith("s3://")
        self.root = self.url.removeprefix("s3://") if self.s3 else str(Path(url).resolve())
        self.probed = False

    @cached_property
    def fs(self) -> Any:
        """The file system, made on first use: a command that never touches the remote never imports s3fs."""
        if not self.s3:
            from fsspec.implementations.local import LocalFileSystem

            return LocalFileSystem(auto_mkdir=True)
        try:
            import s3fs
        except ImportError:
            raise AnvilError(f"{self.url}: an S3 remote needs s3fs (pip install 'anvil[s3]')") from None
        client = {"endpoint_url": self.endpoint_url} if self.endpoint_url else {}
        # retries kept short: a remote that is down must not hold up local work for minutes
        return s3fs.S3FileSystem(
            client_kwargs=client, config_kwargs={"retries": {"max_attempts": 2}, "connect_timeout": 5}
        )

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _unreachable() as e:  # what fsspec, s3fs and botocore raise when the remote cannot be reached or read
            why = (str(e).splitlines() or [""])[0][:200]
            raise RemoteError(f"{self.url}: cannot {what} ({type(e).__name__}: {why})") from None

    def _record_path(self, fingerprint: str) -> str:
        return f"{self.root}/records/{fingerprint}.json"

    def probe(self) -> None:
        """Asked once, before the remote is first used: a missing bucket, an endpoint that does not answer as
        S3 does, or a folder under a regular file is refused by name, never taken for an empty remote."""
        if self.probed:
            return
        if self.s3:
            bucket = self.root.split("/", 1)[0]
            listed = self._call(f"list bucket {bucket}", self.fs.call_s3, "list_objects_v2", Bucket=bucket, MaxKeys=1)
            if not isinstance(listed, dict) or listed.get("Name") != bucket:  # an S3 listing names its bucket
                where = self.endpoint_url or "the default S3 endpoint"
                raise RemoteError(f"{self.url}: {where} does not answer as S3 does (no listing of bucket {bucket})")
        else:
            folder = Path(self.root)
            blocking = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
            if blocking is not None:
                raise RemoteError(f"{self.url}: {blocking} is a file, so no remote store folder can be there")
        self.probed = True

    def has(self, fingerprint: str) -> bool:
        self.probe()
        return bool(self._call("look up the run-cache", self.fs.exists, self._record_path(fingerprint)))

    def record(self, fingerprint: str) -> tuple[StageRecord, str]:
        """The remote's record of an artifact and the upload that holds its files."""
        text = self._call("read a record", self.fs.cat_file, self._record_path(fingerprint))
        try:
            data = json.loads(text)
            upload = data.pop("upload")
            return StageRecord.model_validate(data), str(upload)
        except (ValueError, KeyError, TypeError, ValidationError):
            raise RemoteError(f"{self._record_path(fingerprint)}: damaged remote record; not used") from None

    def push(self, store: Store, record: StageRecord) -> bool:
        """Upload an intact local artifact unless the remote has it; whether it uploaded."""
        if self.has(record.fingerprint):
            return False
        upload = uuid.uuid4().hex
        folder = f"{self.root}/artifacts/{record.fingerprint}/{upload}"
        local = store.artifact(record.fingerprint)
        files = sorted(p for p in local.rglob("*") if p.is_file())
        for path in files:
            self._call("upload", self.fs.put_file, str(path), f"{folder}/{path.relative_to(local).as_posix()}")
        body = json.dumps({**record.model_dump(mode="json"), "upload": upload}, sort_keys=True).encode()
        if self.s3:
            self._call("write a record", self.fs.pipe_file, self._record_path(record.fingerprint), body)
        else:  # a folder: write aside, then rename, so a reader sees the whole record or none
            tmp = self._record_path(record.fingerprint) + f".{upload}.tmp"
            self._call("write a record", self.fs.pipe_file, tmp, body)
            self._call("write a record", self.fs.mv, tmp, self._record_path(record.fingerprint))
        return True

    def pull(self, store: Store, fingerprint: str) -> StageRecord:
        """Download an artifact into the local store, its digest checked; the local run-cache record.
        Call while holding `store.claim(fingerprint)`."""
        self.probe()
        record, upload = self.record(fingerprint)
        folder = f"{self.root}/artifacts/{fingerprint}/{upload}"
        workdir = store.new_workdir(f"pull-{fingerprint[:12]}")
        try:
            names = self._call("list an artifact", self.fs.find, folder)
            for name in names:
                relative = name[len(folder.rstrip("/")) + 1 :] if name.startswith(folder) else Path(name).name
                target = workdir / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                self._call("download", self.fs.get_file, name, str(target))
            try:
                return store.commit(workdir, record, verify=True)  # hashed once, where it stays
            except ArtifactMismatch:
                raise RemoteError(
                    f"{self.url}: artifact {fingerprint[:12]} does not match its record (corrupted or "
                    "partial upload); not used"
                ) from None
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise


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
        self.remote.probe()  # with nothing to push, whether it could be pushed to is still the answer
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
