"""Evaluation prompts in training data: exact copies and 13-word overlaps, found with their file and line."""

from __future__ import annotations

import json

from anvil.recipe.contamination import Index, Prompt, scan
from tests.commands.test_cli import anvil
from tests.conftest import chat_row

LONG = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?"
)


def lines(*rows: str) -> list[bytes]:
    return [row.encode() + b"\n" for row in rows]


def test_an_exact_copy_and_a_long_overlap_are_found_whatever_the_case_and_punctuation():
    index = Index([Prompt("suite s: test short", "What is 17 * 23?"), Prompt("gsm8k_cot item 1", LONG)])
    rows = lines(
        chat_row("hello", "hi"),
        chat_row("WHAT is 17 * 23 ?!", "391"),  # the whole prompt, cased and spaced differently
        chat_row(
            "Tell me a story.",
            "Once, natalia sold clips to 48 of her friends in april and then she sold half of what she had",
        ),  # 13 words in common
        chat_row("what is 17 * 23 and why", "x"),  # a short prompt inside a longer message: not a copy
    )
    found = list(scan(index, rows, "data/t.jsonl"))
    assert [(f.prompt, f.where, f.how) for f in found] == [
        ("suite s: test short", "data/t.jsonl:2", "exact"),
        ("gsm8k_cot item 1", "data/t.jsonl:3", "natalia sold clips to 48 of her friends in april and then she"),
    ]


def test_twelve_words_in_common_are_not_an_overlap():
    index = Index([Prompt("p", LONG)])
    twelve = "natalia sold clips to 48 of her friends in april and then"
    assert list(scan(index, lines(chat_row(twelve, "ok")), "f")) == []
    assert list(scan(index, lines(chat_row(twelve + " she", "ok")), "f")) != []


def test_validate_warns_and_an_error_setting_refuses(project_dir):
    (project_dir / "evals" / "s").mkdir(parents=True)
    (project_dir / "evals" / "s" / "t.toml").write_text(
        'category = "a"\nturns = ["x3"]\nrubric = "r"\n[[checks]]\nkind = "contains"\nvalue = "y"\n'
    )
    recipe = project_dir / "anvil.toml"
    recipe.write_text(recipe.read_text() + '\n[eval]\ncompare = ["base"]\nsuites = ["evals/s"]\n')
    warned = anvil("validate")
    assert warned.returncode == 0
    assert "1 evaluation prompt found in training data (1 row)" in warned.stderr
    assert "suite evals/s: test t in data/a.jsonl:4 (the whole prompt)" in warned.stderr
    assert json.loads(anvil("validate", "--json").stdout)[0]["warnings"]
    assert "evaluation prompt" in anvil("plan").stderr
    recipe.write_text(recipe.read_text().replace("[eval]\n", '[eval]\ncontamination = "error"\n'))
    refused = anvil("plan")
    assert refused.returncode == 1 and refused.stderr.startswith("anvil.toml: eval.contamination: 1 evaluation")
    assert "Traceback" not in refused.stderr
    recipe.write_text(recipe.read_text().replace('"error"', '"off"'))
    assert "evaluation prompt" not in anvil("plan").stderr
