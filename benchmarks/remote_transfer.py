"""Push and pull throughput of the remote store, against `cp` of the same bytes (same run): a shared
folder, and moto's S3 server on loopback (what the tests use; a real bucket is bound by the network).
One artifact of --mb MB in --files files is pushed from one store and pulled into a fresh one (its
digest checked, as every pull does). Run by hand: python benchmarks/remote_transfer.py [--mb 512]"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from anvil.planning.record import StageRecord
from anvil.state.hashing import StatCache
from anvil.state.remote import Remote
from anvil.state.store import Store


def artifact(store: Store, mb: int, files: int) -> StageRecord:
    work = store.new_workdir("bench")
    for i in range(files):
        (work / f"part{i}.bin").write_bytes(os.urandom(mb * (1 << 20) // files))
    record = StageRecord(
        id="bench",
        kind="dataset",
        fingerprint="f" * 64,
        code_version=1,
        config={},
        inputs={},
        files={},
        outputs="",
        started=datetime.now(timezone.utc).isoformat(),
        duration_s=0.0,
    )
    return store.commit(work, record)


def transfer(remote: Remote, root: Path, record: StageRecord) -> tuple[float, float]:
    source = Store(root / "a", StatCache(), owner="a")
    t0 = time.perf_counter()
    remote.push(source, record)
    pushed = time.perf_counter() - t0
    target = Store(root / f"b-{time.monotonic_ns()}", StatCache(), owner="b")
    t0 = time.perf_counter()
    remote.pull(target, record.fingerprint)
    return pushed, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=int, default=512)
    ap.add_argument("--files", type=int, default=4)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="anvil-remote-"))
    try:
        record = artifact(Store(root / "a", StatCache(), owner="a"), args.mb, args.files)
        t0 = time.perf_counter()
        subprocess.run(["cp", "-r", str(root / "a" / "artifacts"), str(root / "copy")], check=True)
        copy_s = time.perf_counter() - t0
        print(f"{args.mb} MB in {args.files} files; cp: {copy_s:.2f} s ({args.mb / copy_s:.0f} MB/s)")
        rows = [("folder", Remote(str(root / "shared")))]
        try:
            import boto3
            from moto.server import ThreadedMotoServer

            os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            endpoint = f"http://127.0.0.1:{server._server.server_port}"
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
            rows.append(("s3 (moto, loopback)", Remote("s3://bench/anvil", endpoint)))
        except ImportError:
            print("moto is not installed: S3 skipped")
        for name, remote in rows:
            push_s, pull_s = transfer(remote, root, record)
            print(
                f"{name:20s} push {push_s:6.2f} s ({args.mb / push_s:6.0f} MB/s, {push_s / copy_s:4.1f}x cp)   "
                f"pull {pull_s:6.2f} s ({args.mb / pull_s:6.0f} MB/s, {pull_s / copy_s:4.1f}x cp)"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
