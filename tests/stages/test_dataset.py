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


def test_tool_schemas_are_trained_in_the_order_mlx_vlm_serves_them():
    from mlx_vlm.prompt_utils import _sort_tool_schema_keys

    from anvil.stages.dataset import served_tool_order

    schema = {"type": "object", "required": ["x"], "properties": {"x": {"type": "string", "enum": ["b", "a"]}}}
    tools = [{"type": "function", "function": {"name": "calculator", "description": "Add.", "parameters": schema}}]
    row = json.dumps({"messages": [{"role": "user", "content": "2+2?"}], "tools": tools})
    written = json.loads(served_tool_order(row))
    served = _sort_tool_schema_keys(tools)
    assert json.dumps(written["tools"]) == json.dumps(served) != json.dumps(tools)
    assert written["tools"][0]["function"]["parameters"]["properties"]["x"]["enum"] == ["b", "a"], "lists keep order"
    plain = json.dumps({"messages": [{"content": "hi", "role": "user"}]})
    assert served_tool_order(plain) == plain, "rows without tools are kept byte for byte"
