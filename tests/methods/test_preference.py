"""Preference rounds in the recipe: rows checked as preference pairs, the method and its settings validated
and fingerprinted (sft rounds keep the fingerprints they had), the plan naming the method. The training
itself runs in tests/test_default_recipe_e2e.py (recipes/tiny-dpo.toml)."""

from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter

from anvil.errors import InvalidInput
from anvil.planning.plan import make_plan
from anvil.recipe import contamination
from anvil.recipe.load import load_recipe
from anvil.recipe.models import Lora, Train
from anvil.recipe.preference import PreferenceRecord, as_chat
from anvil.recipe.rows import count_rows, load_rows
from anvil.stages.registry import build_graph
from anvil.stages.train import TrainConfig
from tests.conftest import LINEAGE

PAIR = {"prompt": "Predict the rain.", "chosen": "I don't know.", "rejected": "No."}
DPO_ROUND = """
[models.v3]
parent = "v2"
method = "dpo"
dataset = "prefs"
lora = { rank = 4, last_layers = 2 }
preference = { beta = 0.2 }

[datasets.prefs]
format = "preference"
sources = [{ path = "data/prefs.jsonl", category = "unknowable" }]
"""


def write_pairs(folder, rows) -> None:
    (folder / "data" / "prefs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize(
    "row, expected",
    [
        ({**PAIR, "chosen": "No."}, "rejected: is the chosen answer (expected a different answer)"),
        ({"prompt": "x", "chosen": "y"}, "'rejected' is a required property"),
        ({**PAIR, "score": 1}, "Additional properties are not allowed ('score' was unexpected)"),
        ({**PAIR, "prompt": ""}, "prompt: '' should be non-empty"),
        ({**PAIR, "chosen": ["a"]}, "chosen: ['a'] is not of type 'string'"),
        (
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
            "('messages' was unexpected) (expected a preference record",
        ),
    ],
)
def test_a_bad_preference_row_is_located_and_explained(tmp_path, row, expected):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(PAIR) + "\n" + json.dumps(row) + "\n")
    count, problems = count_rows(path, "p.jsonl", "preference")
    assert count == 1 and problems and str(problems[0]).startswith("p.jsonl:2:")
    assert expected in str(problems[0])


def test_good_pairs_are_read_and_a_chat_file_is_not_taken_for_pairs(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(PAIR) + "\n" + json.dumps({**PAIR, "system": "Be brief."}) + "\n")
    assert len(load_rows(path, "p.jsonl", "preference")) == 2
    assert count_rows(path, "p.jsonl", "chat")[1], "a pair is not a chat record"
    assert TypeAdapter(PreferenceRecord).validate_python(PAIR)["rejected"] == "No."
    assert as_chat({**PAIR, "system": "S"})["messages"] == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": PAIR["prompt"]},
        {"role": "assistant", "content": PAIR["chosen"]},
    ]


def test_a_dpo_round_is_planned_with_its_method_and_its_settings_fingerprinted(project_dir):
    write_pairs(project_dir, [{**PAIR, "prompt": f"Predict {i}."} for i in range(8)])
    (project_dir / "anvil.toml").write_text(LINEAGE + DPO_ROUND)
    loaded = load_recipe("anvil.toml")
    graph = build_graph(loaded.recipe, loaded.suites)
    node = graph.nodes["v3.train"]
    assert node.detail == "dpo" and node.needs["parent"] == "v2.fuse"
    assert node.settings["method"] == "dpo" and node.settings["preference"]["beta"] == 0.2
    plan = make_plan(graph, {}, {path: "x" for n in graph.nodes.values() for path in n.files})
    [line] = [a.line() for a in plan.actions if a.stage == "v3.train"]
    assert line.startswith("+ v3.train (dpo): ")
    (project_dir / "anvil.toml").write_text(LINEAGE + DPO_ROUND.replace("beta = 0.2", "beta = 0.3"))
    other = build_graph(load_recipe("anvil.toml").recipe, {}).nodes["v3.train"]
    assert other.settings != node.settings


def test_an_sft_round_is_fingerprinted_as_before_preference_rounds_existed():
    settings = TrainConfig(lora=Lora(), train=Train()).model_dump(mode="json")
    assert set(settings) == {"lora", "train"}


@pytest.mark.parametrize(
    "method, preference, expected",
    [
        ("orpo", 'preference = { beta = 0.2, loss_type = "ipo" }', "ORPO takes only preference.beta (loss_type"),
        ("orpo", "preference = { beta = 0.2 }", None),
        ("dpo", "preference = { beta = 0.2, delta = 3.0 }", "preference.delta is DPOP's"),
        ("dpo", 'preference = { beta = 0.2, loss_type = "dpop", delta = 3.0 }', None),
        ("dpo", "preference = { beta = 0 }", "models.v3.preference.beta"),
        ("sft", "preference = { beta = 0.2 }", "preference settings belong to method = 'dpo' or 'orpo'"),
    ],
)
def test_preference_settings_are_checked_against_the_method(project_dir, method, preference, expected):
    write_pairs(project_dir, [{**PAIR, "prompt": f"Predict {i}."} for i in range(8)])
    round_ = DPO_ROUND.replace('method = "dpo"', f'method = "{method}"').replace(
        "preference = { beta = 0.2 }", preference
    )
    (project_dir / "anvil.toml").write_text(LINEAGE + round_)
    if expected is None:
        assert load_recipe("anvil.toml").recipe.models["v3"].method == method
        return
    with pytest.raises(InvalidInput) as caught:
        load_recipe("anvil.toml")
    assert expected in "\n".join(map(str, caught.value.problems))


def test_a_round_whose_method_does_not_fit_its_dataset_is_refused(project_dir):
    write_pairs(project_dir, [{**PAIR, "prompt": f"Predict {i}."} for i in range(8)])
    (project_dir / "anvil.toml").write_text(LINEAGE + DPO_ROUND.replace('format = "preference"', 'format = "chat"'))
    with pytest.raises(InvalidInput) as caught:
        load_recipe("anvil.toml")
    text = "\n".join(map(str, caught.value.problems))
    assert "models.v3.dataset: dataset 'prefs' holds chat rows, but method = 'dpo' trains on preference rows" in text


def test_contamination_reads_the_prompts_of_preference_pairs():
    index = contamination.Index([contamination.Prompt("suite/t", "Predict the stock market tomorrow, please.")])
    rows = [json.dumps({**PAIR, "prompt": "Predict the stock market tomorrow, please."}).encode()]
    assert [f.where for f in contamination.scan(index, rows, "p.jsonl")] == ["p.jsonl:1"]
