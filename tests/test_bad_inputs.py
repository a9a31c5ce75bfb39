"""Every bad input of the campaign (tests/bad_inputs.py) is one clean error: exit 1, no traceback, the
file (and where it has one, the line and key) named, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from anvil.cli import main
from tests.bad_inputs import cases, setup

CASES = cases()


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_the_campaign_is_broad():
    assert len(CASES) >= 150


@pytest.fixture(autouse=True)
def _no_shared_store(monkeypatch):
    monkeypatch.delenv("ANVIL_STORE", raising=False)


@pytest.mark.parametrize("make", [make for _, make in CASES], ids=[name for name, _ in CASES])
def test_bad_input_is_refused_cleanly(make, tmp_path, capfd):
    setup(tmp_path)
    args, expect = make(tmp_path)
    before = snapshot(tmp_path)
    try:
        code = main(args)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    err = capfd.readouterr().err
    assert code == 1, f"accepted: {err}"
    assert "Traceback" not in err and expect in err, err
    assert snapshot(tmp_path) == before, "nothing is written for a refused input"


@pytest.mark.parametrize("value, expect", [("", "ANVIL_STORE is set but empty"), ("anvil.toml", "not a folder")])
def test_a_bad_store_setting_is_refused(value, expect, tmp_path, capfd, monkeypatch):
    setup(tmp_path)
    monkeypatch.setenv("ANVIL_STORE", value)
    assert main(["plan"]) == 1
    err = capfd.readouterr().err
    assert "Traceback" not in err and expect in err, err


def test_damaged_caches_and_locks_only_cost_time(tmp_path, capfd):
    """The stat cache and the lock file hold nothing that can be lost: damaged, they are rebuilt."""
    setup(tmp_path)
    folder = tmp_path / ".anvil" / "state" / "anvil.toml"
    folder.mkdir(parents=True)
    for damaged in ("[1, 2]", '{"files": [], "facts": 3}', "{not json"):
        (folder / "hashes.json").write_text(damaged)
        (folder / "lock").write_text('{"pid": "abc"}')
        assert main(["plan"]) == 0, capfd.readouterr().err


def test_caches_and_logs_replaced_by_folders_or_edited_never_fail_a_command(tmp_path, capfd):
    """hashes.json and history.jsonl only save time: a folder in their place, or an entry of the wrong shape,
    costs a rehash or an estimate, never the stage that just succeeded."""
    import json
    import os

    from anvil.state.hashing import sha256_file

    setup(tmp_path)
    data = (tmp_path / "data" / "voice.jsonl").resolve()
    st, digest = os.stat(data), sha256_file(data)
    folder = tmp_path / ".anvil" / "state" / "anvil.toml"
    folder.mkdir(parents=True)
    (folder / "hashes.json").write_text(
        json.dumps(
            {"files": {str(data): [st.st_size, st.st_mtime_ns, st.st_ino]}, "facts": {f"rows:chat:{digest}": "many"}}
        )
    )
    assert main(["plan"]) == 0, capfd.readouterr().err
    (folder / "hashes.json").unlink()
    (folder / "hashes.json").mkdir()
    (tmp_path / ".anvil" / "history.jsonl").mkdir()
    assert main(["apply", "--target", "dataset.d"]) == 0, capfd.readouterr().err
    capfd.readouterr()
    assert main(["status"]) == 0 and capfd.readouterr().out.splitlines()[1].split()[:2] == ["dataset.d", "built"]
    (folder / "lock").mkdir()
    assert main(["apply"]) == 1 and "lock: cannot open it as a lock file" in capfd.readouterr().err


def test_validate_is_served_from_the_row_cache(tmp_path, monkeypatch):
    """`anvil validate` reads an unchanged data file's rows once, like `plan` (the cache is by content)."""
    from anvil.recipe import rows

    setup(tmp_path)
    reads = []
    real = rows.count_rows
    monkeypatch.setattr(rows, "count_rows", lambda *a: reads.append(a) or real(*a))
    assert main(["validate"]) == 0 and main(["validate"]) == 0 and main(["plan"]) == 0
    assert len(reads) == 1
