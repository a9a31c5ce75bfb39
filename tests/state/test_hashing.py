from __future__ import annotations

import os

from anvil.state.hashing import StatCache, sha256_file


def test_stat_cache_trusts_unchanged_files_and_sees_changes(tmp_path, monkeypatch):
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 100)
    cache = StatCache(tmp_path / "cache.json")
    first = cache.file(f)
    assert first == sha256_file(f)
    cache.save()

    reloaded = StatCache(tmp_path / "cache.json")
    monkeypatch.setattr("anvil.state.hashing.sha256_file", lambda p: (_ for _ in ()).throw(AssertionError("rehashed")))
    assert reloaded.file(f) == first  # trusted by (size, mtime_ns, inode): no read

    monkeypatch.undo()
    f.write_bytes(b"b" * 100)
    os.utime(f, ns=(1, 1))
    assert reloaded.file(f) != first


def test_tree_digest_covers_names_and_contents(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("1")
    cache = StatCache()
    before = cache.tree(tmp_path / "d")
    (tmp_path / "d" / "x").rename(tmp_path / "d" / "y")
    assert cache.tree(tmp_path / "d") != before


def test_damaged_cache_costs_only_a_rehash(tmp_path):
    (tmp_path / "cache.json").write_text("{not json")
    f = tmp_path / "f"
    f.write_text("x")
    assert StatCache(tmp_path / "cache.json").file(f) == sha256_file(f)
