"""Shipped recipes and generated files are tested artifacts."""

from __future__ import annotations

import json

import jsonschema
import pytest
import tomli

from anvil.recipe.load import load_recipe
from anvil.recipe.schema import recipe_schema, stale_files
from tests.conftest import REPO

RECIPES = [REPO / "anvil.toml", *sorted((REPO / "recipes").glob("*.toml"))]


def test_schema_folder_is_up_to_date():
    assert stale_files(REPO / "schema") == [], "run `anvil schema` and commit schema/"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_validate(recipe):
    load_recipe(recipe)
    text = recipe.read_text()
    assert text.startswith("#:schema "), "editors find the schema through the first line"
    assert "anvil " in text.split("[project]")[0], "each recipe opens with the command that runs it"
    jsonschema.validate(tomli.loads(text), recipe_schema())  # what editors check agrees with anvil


def test_every_schema_field_has_a_description():
    schema = json.loads((REPO / "schema" / "anvil.schema.json").read_text())
    missing = [
        f"{name}.{field}"
        for name, model in {"Recipe": schema, **schema["$defs"]}.items()
        for field, spec in model.get("properties", {}).items()
        if not spec.get("description")
    ]
    assert missing == []


def test_seed_lineage_settings():
    recipe = load_recipe(REPO / "recipes" / "gemma4-31b-pe.toml").recipe
    v2 = recipe.models["v2"]
    assert [s.count for s in recipe.datasets["behavioral"].sources] == [80, 69, 30, 20]
    assert (v2.lora.rank, v2.lora.scale, v2.lora.last_layers) == (16, 10.0, 12)
    assert (v2.train.steps, v2.train.batch_size, v2.train.learning_rate, v2.train.max_seq_length) == (
        400,
        1,
        2e-5,
        1024,
    )
    assert v2.train.grad_checkpoint and recipe.serve.port == 8092 and recipe.serve.kv_cache.quantization == "turboquant"
    assert recipe.eval.runs == 3
