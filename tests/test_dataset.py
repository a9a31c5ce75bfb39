"""The dataset stage for real: mixing, seeded shuffle, stratified split, manifest."""

from __future__ import annotations

import json

from anvil.commands.apply import ApplyDisplay  # noqa: F401  (the CLI path imports cleanly)
from anvil.project import open_project


def apply(folder):
    project = open_project("anvil.toml")
    project.apply(project.plan())
    state = project.state.load()
    return {sid: project.store.artifact(rec.fingerprint) for sid, rec in state.items()}, state


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_mix_split_and_manifest(data_dir):
    artifacts, state = apply(data_dir)
    folder = artifacts["dataset.behavioral"]
    train, valid = rows(folder / "train.jsonl"), rows(folder / "valid.jsonl")
    assert len(train) + len(valid) == 8
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["categories"] == {
        "a": {"rows": 6, "train": 4, "valid": 2},
        "b": {"rows": 2, "train": 2, "valid": 0},
    }
    assert all(set(r) == {"messages"} for r in train + valid)
    assert state["dataset.behavioral"].metrics["categories"] == {"a": 6, "b": 2}
    users = {r["messages"][0]["content"] for r in train + valid}
    assert len(users) == 8 and all(u[0] in "xm" for u in users)


def test_same_seed_same_split_other_seed_other_split(data_dir):
    artifacts, _ = apply(data_dir)
    first = (artifacts["dataset.behavioral"] / "train.jsonl").read_text()
    recipe = data_dir / "anvil.toml"
    recipe.write_text(recipe.read_text().replace("valid_fraction = 0.25", "valid_fraction = 0.25\nseed = 3"))
    artifacts, _ = apply(data_dir)
    other = (artifacts["dataset.behavioral"] / "train.jsonl").read_text()
    assert other != first
    import shutil

    shutil.rmtree(data_dir / ".anvil")
    recipe.write_text(recipe.read_text().replace("\nseed = 3", ""))
    artifacts, _ = apply(data_dir)
    assert (artifacts["dataset.behavioral"] / "train.jsonl").read_text() == first


def test_at_least_one_validation_row(data_dir):
    recipe = data_dir / "anvil.toml"
    recipe.write_text(recipe.read_text().replace("valid_fraction = 0.25", "valid_fraction = 0.01"))
    artifacts, _ = apply(data_dir)
    assert len(rows(artifacts["dataset.behavioral"] / "valid.jsonl")) == 1
