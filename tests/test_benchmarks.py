"""The knowledge benchmarks' protocols, checked against hand-graded answers, and the statistics against
values worked out by hand (textbook McNemar cases, a bootstrap whose answer is known)."""

from __future__ import annotations

import json

import pytest

from anvil.knowledge import gsm8k, mmlu_pro
from anvil.knowledge.data import metric_name, read, sample, sources
from anvil.knowledge.protocol import truncate
from anvil.recipe.evaluation import Knowledge
from tests.conftest import REPO

JANET = {"question": "How much does Janet make?", "answer": "She sells 9 eggs.\n#### 1,800"}


@pytest.mark.parametrize(
    "answer, strict, flexible",
    [
        ("She makes 1,800 dollars. The answer is 1,800.", "1,800", "1,800."),  # both right
        ("The answer is $1800.", None, "$1800."),  # strict wants a digit after "is ": the `$` stops it
        ("the answer is 1800.", None, "1800."),  # strict is case-sensitive
        ("So 12 + 3 = 15, then 1800 in all", None, "1800"),  # flexible takes the last number
        ("The answer is 18. Later: 1800", "18.", "1800"),  # strict takes the first match, wrong here
        ("I do not know.", None, None),
        ("", None, None),
    ],
)
def test_gsm8k_extraction_as_the_harness_does(answer, strict, flexible):
    s, f = gsm8k.strict(answer, JANET), gsm8k.flexible(answer, JANET)
    assert (s.extracted, f.extracted) == (strict, flexible)
    assert s.correct == (strict is not None and strict.replace(",", "").rstrip(".") == "1800")
    assert f.correct == (flexible is not None and flexible.replace(",", "").replace("$", "").rstrip(".") == "1800")


def test_gsm8k_target_and_prompt():
    assert gsm8k.target(JANET) == "1,800" and gsm8k.normalise("1,800.") == "1800"
    prompt = gsm8k.prompt(JANET, gsm8k.BENCHMARK.default_shots)
    blocks = prompt.split("\n\n")
    assert len(blocks) == 9 and blocks[0].startswith("Q: There are 15 trees in the grove.")
    assert blocks[0].endswith(
        "A: There are 15 trees originally. Then there were 21 trees after some more were "
        "planted. So there must have been 21 - 15 = 6. The answer is 6."
    )
    assert blocks[-1] == "Q: How much does Janet make?\nA:"
    assert (
        truncate(" 9 * 2 = 18. The answer is 18.\n\nQ: next", gsm8k.BENCHMARK.stop)
        == " 9 * 2 = 18. The answer is 18.\n\n"
    )


ITEM = {"question_id": 7, "question": "2 + 2?", "options": ["3", " 4 ", "5"], "answer": "B", "category": "math"}


@pytest.mark.parametrize(
    "answer, extracted, correct",
    [
        ("2 + 2 = 4. The answer is (B).", "B", True),
        ("so the answer is B", "B", True),
        ("the answer is (C)", "C", False),
        ("answer is (A), no wait, the answer is (B)", "A", False),
        ("the answer is (K)", None, False),
        ("B", None, False),
        ("The Answer is (B)", None, False),
    ],
)
def test_mmlu_pro_extraction_as_the_harness_does(answer, extracted, correct):
    graded = mmlu_pro.extract(answer, ITEM)
    assert (graded.extracted, graded.correct) == (extracted, correct)


def test_mmlu_pro_prompt_uses_exemplars_of_the_same_subject_only():
    shot = {
        **ITEM,
        "question": "1 + 1?",
        "answer": "A",
        "cot_content": "A: Let's think step by step. 1 + 1 = 2. The answer is (A).",
    }
    other = {**shot, "category": "law"}
    [turn] = mmlu_pro.BENCHMARK.messages(ITEM, [other] + [shot] * 6, "one_turn")
    prompt = turn["content"]
    assert turn["role"] == "user"
    assert prompt.startswith(
        "The following are multiple choice questions (with answers) about math. Think step "
        'by step and then finish your answer with "the answer is (X)" where X is the correct '
        "letter choice.\nQuestion:\n1 + 1?\nOptions:\nA. 3\nB. 4\nC. 5\nAnswer: Let's think step "
        "by step. 1 + 1 = 2. The answer is (A)."
    )
    assert prompt.count("1 + 1 = 2") == 5, "5 exemplars, all of the item's subject"
    assert prompt.endswith("\n\nQuestion:\n2 + 2?\nOptions:\nA. 3\nB. 4\nC. 5\nAnswer: Let's think step by step.")
    system, user = mmlu_pro.BENCHMARK.messages(ITEM, [shot] * 5, "system_header")
    assert system == {"role": "system", "content": mmlu_pro.header(ITEM)} and system["content"].endswith("choice.\n")
    assert user["role"] == "user" and system["content"] + user["content"] == prompt, "lm-eval's chat form, same text"
    assert gsm8k.BENCHMARK.messages(JANET, [], "system_header")[0]["role"] == "user", "GSM8K-CoT has no header"


def test_shipped_subsets_read_and_sample_the_same_items_for_every_model():
    rows = read(REPO / "evals/knowledge/gsm8k/test.jsonl", "gsm8k_cot", "gsm8k")
    assert len(rows) == 50 and sample(rows, 8, 0) == sample(rows, 8, 0) != sample(rows, 8, 1)
    assert len(read(REPO / "evals/knowledge/mmlu_pro/test.jsonl", "mmlu_pro", "mmlu_pro")) == 50
    assert metric_name(Knowledge(benchmark="mmlu_pro", data="path:x.jsonl")) == "mmlu_pro_0shot", "no exemplars"
    assert metric_name(Knowledge(benchmark="mmlu_pro")) == "mmlu_pro", "the Hub's validation split gives the 5 shots"
    assert sources("gsm8k_cot", None, None) == ("hf:openai/gsm8k/main/test-00000-of-00001.parquet", None)


def test_the_full_public_sets_pass_the_row_checks():
    shared = REPO.parent / "shared" / "data"
    if not shared.exists():
        pytest.skip("the shared benchmark data is not here")
    assert len(read(shared / "gsm8k" / "test.jsonl", "gsm8k_cot", "gsm8k")) == 1319
    assert len(read(shared / "mmlu_pro" / "test.jsonl", "mmlu_pro", "mmlu_pro")) == 12032


def test_a_bad_row_is_named_by_its_line(tmp_path):
    from anvil.errors import InvalidInput

    (tmp_path / "rows.jsonl").write_text(json.dumps(JANET) + "\n" + json.dumps({"question": "q", "answer": "a"}) + "\n")
    with pytest.raises(InvalidInput, match=r"rows.jsonl:2:1: the answer has no `#### N` final answer"):
        read(tmp_path / "rows.jsonl", "gsm8k_cot", "rows.jsonl")
