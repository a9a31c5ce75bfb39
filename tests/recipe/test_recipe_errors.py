"""Every class of recipe error gets a located message: FILE:LINE:COL: key.path: what (expected)."""

from __future__ import annotations

import pytest

from anvil.errors import InvalidInput
from anvil.recipe.load import load_recipe
from tests.conftest import LINEAGE


def problems(project_dir, text: str) -> list[str]:
    (project_dir / "anvil.toml").write_text(text)
    with pytest.raises(InvalidInput) as caught:
        load_recipe("anvil.toml")
    return [str(p) for p in caught.value.problems]


def test_the_fixture_recipe_is_valid(project_dir):
    assert load_recipe("anvil.toml").recipe.models["v2"].parent == "v1"


def test_toml_syntax_error_names_line_and_column(project_dir):
    [msg] = problems(project_dir, LINEAGE.replace('name = "t"', 'name = "t'))
    assert msg.startswith("anvil.toml:2:") and "invalid TOML" in msg


@pytest.mark.parametrize(
    "old, new, where, expected",
    [
        (
            "lora = { rank = 4, last_layers = 2 }\ntrain = { steps = 10, learning_rate = 2e-05 }\n\n[models.v2]",
            "lora = { rank = 0, last_layers = 2 }\ntrain = { steps = 10, learning_rate = 2e-05 }\n\n[models.v2]",
            "anvil.toml:11:10: models.v1.lora.rank",
            "0 is out of range (expected >= 1)",
        ),
        (
            "train = { steps = 10, learning_rate = 2e-05 }\n\n[models.v2]",
            "train = { steps = 10, learning_rate = -1e-05 }\n\n[models.v2]",
            "anvil.toml:12:23: models.v1.train.learning_rate",
            "-1e-05 is out of range (expected > 0",
        ),
        (
            'category = "a", count = 6',
            'category = "a", count = 0',
            "anvil.toml:26:44: ",
            "datasets.behavioral.sources[0].count: 0 is out of range (expected >= 1)",
        ),
        (
            "valid_fraction = 0.25",
            "valid_fraction = 1.0",
            "anvil.toml:24:1: datasets.behavioral.valid_fraction",
            "1.0 is out of range (expected < 1",
        ),
        (
            "steps = 10, learning_rate = 2e-05 }\n\n[models.v2]",
            'steps = "ten", learning_rate = 2e-05 }\n\n[models.v2]',
            "anvil.toml:12:11: models.v1.train.steps",
            "'ten' has the wrong type (expected integer",
        ),
    ],
)
def test_wrong_types_and_ranges(project_dir, old, new, where, expected):
    assert old in LINEAGE
    [msg] = problems(project_dir, LINEAGE.replace(old, new, 1))
    assert msg.startswith(where) and expected in msg, msg


def test_unknown_key_suggests_the_close_one(project_dir):
    [msg] = problems(
        project_dir, LINEAGE.replace("lora = { rank = 4, last_layers = 2 }", "lora = { rank = 4, last_layer = 2 }", 1)
    )
    assert msg == "anvil.toml:11:20: models.v1.lora.last_layer: unknown key (did you mean 'last_layers'?)"


def test_unknown_table_key_lists_what_is_allowed(project_dir):
    [msg] = problems(project_dir, LINEAGE.replace('[project]\nname = "t"', '[project]\nname = "t"\nzzz = 1'))
    assert msg == "anvil.toml:3:1: project.zzz: unknown key (expected one of: license, name)"


def test_undefined_model_and_dataset(project_dir):
    msgs = problems(
        project_dir,
        LINEAGE.replace('parent = "v1"', 'parent = "v9"').replace('dataset = "domain"', 'dataset = "domian"'),
    )
    assert (
        "anvil.toml:10:1: models.v1.dataset: dataset 'domian' is not defined (expected one of: behavioral, domain)"
        in msgs
    )
    assert "anvil.toml:15:1: models.v2.parent: model 'v9' is not defined (expected one of: base, v1, v2)" in msgs


def test_lineage_cycle(project_dir):
    [msg] = problems(project_dir, LINEAGE.replace('parent = "base"', 'parent = "v2"'))
    assert msg.startswith("anvil.toml:9:1: models.v1.parent: lineage cycle v1 -> v2 -> v1")


def test_missing_dataset_file(project_dir):
    (project_dir / "data" / "b.jsonl").unlink()
    [msg] = problems(project_dir, LINEAGE)
    assert msg.startswith("anvil.toml:27:5: datasets.behavioral.sources[1].path: data/b.jsonl does not exist")


def test_asking_for_more_rows_than_a_source_has(project_dir):
    [msg] = problems(project_dir, LINEAGE.replace("count = 2", "count = 5"))
    assert msg == (
        "anvil.toml:27:44: datasets.behavioral.sources[1].count: asks for 5 rows but data/b.jsonl has 4 "
        "(expected at most 4)"
    )


@pytest.mark.parametrize(
    "row, expected",
    [
        ("{not json", "data/b.jsonl:3:2: not valid JSON"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "data/b.jsonl:3:1: messages: has no assistant message"),
        (
            '{"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}]}',
            "data/b.jsonl:3:1: messages[0].role: 'robot' is not one of",
        ),
        (
            '{"messages": [{"role": "assistant"}]}',
            "data/b.jsonl:3:1: messages[0]: assistant turn has neither content nor tool_calls",
        ),
        ('{"mesages": []}', "data/b.jsonl:3:1: row: 'messages' is a required property"),
    ],
)
def test_invalid_rows_name_file_line_and_reason(project_dir, row, expected):
    lines = (project_dir / "data" / "b.jsonl").read_text().splitlines()
    lines[2] = row
    (project_dir / "data" / "b.jsonl").write_text("\n".join(lines) + "\n")
    msgs = problems(project_dir, LINEAGE)
    assert any(m.startswith(expected) for m in msgs), msgs


def test_tool_calls_rows_are_valid(project_dir):
    row = (
        '{"tools": [{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}], '
        '"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": null, "tool_calls": '
        '[{"id": "c1", "type": "function", "function": {"name": "calc", "arguments": "{\\"e\\": \\"2+2\\"}"}}]}, '
        '{"role": "tool", "tool_call_id": "c1", "content": "4"}, {"role": "assistant", "content": "4."}]}'
    )
    (project_dir / "data" / "b.jsonl").write_text((project_dir / "data" / "b.jsonl").read_text() + row + "\n")
    load_recipe("anvil.toml")


def test_every_problem_is_reported_at_once(project_dir):
    text = LINEAGE.replace("rank = 4,", "rank = 0,").replace("valid_fraction = 0.25", "valid_fraction = -1")
    assert len(problems(project_dir, text)) == 3


def test_weights_need_a_size_and_split_it(project_dir):
    text = LINEAGE.replace("count = 6", "weight = 3.0").replace("count = 2", "weight = 1.0")
    [msg] = problems(project_dir, text)
    assert "datasets.behavioral: sources with a weight need the dataset's size" in msg
    recipe = load_recipe_text(project_dir, text.replace("valid_fraction = 0.25", "valid_fraction = 0.25\nsize = 8"))
    assert recipe.datasets["behavioral"].row_counts([8, 4]) == [6, 2]


def load_recipe_text(project_dir, text):
    (project_dir / "anvil.toml").write_text(text)
    return load_recipe("anvil.toml").recipe


def test_missing_recipe_file_is_a_clear_error(tmp_path):
    from anvil.errors import AnvilError

    with pytest.raises(AnvilError, match="nope.toml: no such recipe"):
        load_recipe("nope.toml")


def _knowledge(project_dir, benchmark: str, items: list[dict], shots: list[dict] | None) -> list[str]:
    import json

    (project_dir / "k").mkdir(exist_ok=True)
    (project_dir / "k" / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    fewshot = ""
    if shots is not None:
        (project_dir / "k" / "shots.jsonl").write_text("".join(json.dumps(s) + "\n" for s in shots))
        fewshot = ', fewshot = "path:k/shots.jsonl"'
    recipe = (
        LINEAGE + f'\n[eval]\ncompare = ["base"]\nknowledge = [{{ benchmark = "{benchmark}", '
        f'data = "path:k/items.jsonl"{fewshot}, n = 1 }}]\n'
    )
    (project_dir / "anvil.toml").write_text(recipe)
    try:
        load_recipe("anvil.toml")
    except InvalidInput as e:
        return [str(p) for p in e.problems]
    return []


GSM = {"question": "1+1?", "answer": "1+1=2\n#### 2"}
MMLU = {"question": "q", "options": ["a", "b"], "answer": "A", "category": "law"}


def test_a_repeated_knowledge_item_is_refused_by_its_line(project_dir):
    [msg] = _knowledge(project_dir, "gsm8k_cot", [GSM, {"question": "2+2?", "answer": "#### 4"}, GSM], None)
    assert msg.startswith("k/items.jsonl:3:1: repeats the item of line 1")


def test_few_shot_files_are_checked_when_the_recipe_is_read(project_dir):
    found = _knowledge(project_dir, "mmlu_pro", [MMLU], [MMLU] * 5)
    assert len(found) == 5 and found[0].startswith("k/shots.jsonl:1:1: the exemplar has no `cot_content`")
    [msg] = _knowledge(project_dir, "mmlu_pro", [MMLU], [MMLU | {"cot_content": "A: so A."}] * 4)
    assert "k/shots.jsonl has fewer than 5 exemplars for 1 subject(s) of the items (law)" in msg
    [msg] = _knowledge(project_dir, "gsm8k_cot", [GSM], [GSM] * 7)
    assert "k/shots.jsonl has 7 exemplars; the protocol uses 8" in msg
    assert _knowledge(project_dir, "gsm8k_cot", [GSM], [GSM] * 40) == []


def test_a_departure_from_the_protocol_goes_by_another_name():
    from anvil.knowledge.data import metric_name
    from anvil.recipe.evaluation import Knowledge

    def name(**spec) -> str:
        return metric_name(Knowledge(**spec))

    assert name(benchmark="gsm8k_cot", data="path:a.jsonl") == "gsm8k_cot"
    assert name(benchmark="gsm8k_cot", data="path:a.jsonl", fewshot="path:s.jsonl") == "gsm8k_cot_customshots"
    assert name(benchmark="gsm8k_cot", max_tokens=256) == "gsm8k_cot", "the protocol's own budget"
    assert name(benchmark="gsm8k_cot", max_tokens=32) == "gsm8k_cot_max32"
    assert name(benchmark="mmlu_pro", data="path:a.jsonl") == "mmlu_pro_0shot"
    assert name(benchmark="mmlu_pro") == "mmlu_pro"
    assert name(benchmark="mmlu_pro", data="path:a.jsonl", fewshot="path:s.jsonl") == "mmlu_pro_customshots"
    assert name(benchmark="mmlu_pro", max_tokens=4096, chat="system_header") == "mmlu_pro_max4096_system"


def test_a_system_turn_is_refused_for_a_benchmark_without_a_header(project_dir):
    recipe = (
        LINEAGE + '\n[eval]\ncompare = ["base"]\nknowledge = [{ benchmark = "gsm8k_cot", chat = "system_header" }]\n'
    )
    (project_dir / "anvil.toml").write_text(recipe)
    with pytest.raises(InvalidInput) as e:
        load_recipe("anvil.toml")
    [msg] = [str(p) for p in e.value.problems]
    assert "eval.knowledge[0].chat" in msg and "gsm8k_cot has no header to put in a system turn" in msg


def test_a_recipe_with_a_byte_order_mark_is_read_as_taplo_reads_it(project_dir):
    text = (project_dir / "anvil.toml").read_text()
    (project_dir / "anvil.toml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_recipe("anvil.toml").recipe.project.name
