"""Anvil's hand-written protocols against lm-evaluation-harness itself, both ways, on the items Anvil ships:
lm-eval builds each prompt and grades each answer (through backends/harness.py, the path a recipe's `task`
runs), Anvil's protocol does the same for the same item, and the two must agree item by item: the chat turns
sent, the stop sequences, what each filter extracted and whether it was right. The answers are written to
exercise the graders (right, wrong, formatted, unparseable), so no server is needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anvil.backends import harness
from anvil.knowledge.registry import BENCHMARKS
from tests.conftest import REPO

pytest.importorskip("lm_eval")  # the test command installs the extra; without it this file has nothing to check

GSM8K = REPO / "evals/knowledge/gsm8k/test.jsonl"
MMLU_PRO = REPO / "evals/knowledge/mmlu_pro/test.jsonl"
FORGING = REPO / "evals/knowledge/forging/test.jsonl"
FILTERS = {
    "gsm8k_cot": {"flexible": "flexible-extract", "strict": "strict-match"},
    "mmlu_pro": {"custom": "custom-extract"},
    "qa": {"exact": "exact"},  # the task file mirrors `exact`; `pattern` is the protocol's own
}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def gsm8k_answers(gold: str, i: int) -> str:
    """Answers in the shapes GSM8K's filters tell apart."""
    shapes = [
        f"Let me think. 2 + 2 = 4. The answer is {gold}.",
        f"The answer is {int(gold.replace(',', '')) + 1}.",
        f"So it costs ${gold}.",
        f"First 12, then {gold}, so 7",
        "I do not know.",
        f"The answer is {gold}",
        f"#### {gold}",
        f"The answer is -{gold}. Then {gold}.",
    ]
    return shapes[i % len(shapes)]


def mmlu_answers(gold: str, i: int) -> str:
    wrong = "A" if gold != "A" else "B"
    shapes = [
        f"Step by step... the answer is ({gold})",
        f"the answer is {wrong}",
        f"The answer is ({gold.lower()})",
        "I cannot tell.",
        f"answer is {gold} and the answer is ({wrong})",
    ]
    return shapes[i % len(shapes)]


def run_both(task: harness.Task, benchmark: str, items: list[dict], shots: list[dict], chat: str, write) -> None:
    """`task` run by lm-eval on every document, and Anvil's protocol on the same items, compared."""
    built = harness.build(task)
    docs = list(built.eval_docs)
    assert len(docs) == len(items)
    sent: dict[str, tuple] = {}

    def answer(prompts: list[harness.Prompt]) -> list[str]:
        out = []
        for turns, max_tokens, stop in prompts:
            index = next(
                i for i, item in enumerate(items) if item_text(benchmark, item) in turns[-1]["content"][-3000:]
            )
            sent[json.dumps(turns)] = (index, max_tokens, stop)
            out.append(write(items[index], index))
        return out

    graded = harness.run(task, built, list(range(len(docs))), answer, chat)
    bench = BENCHMARKS[benchmark]
    for index, (item, theirs) in enumerate(zip(items, graded, strict=True)):
        mine = bench.messages(item, shots, chat)
        assert theirs["messages"] == mine, f"item {index}: the prompt lm-eval sends differs"
        assert sent[json.dumps(mine)][0] == index
        assert set(bench.stop) == set(sent[json.dumps(mine)][2]), "the stop sequences"
        response = theirs["response"]
        assert response == write(item, index)
        for ours, name in FILTERS[benchmark].items():
            grade = bench.filters[ours](response, item)
            assert theirs["correct"][name] == grade.correct, f"item {index} {name}: {response!r}"
            assert theirs["extracted"][name] == grade.extracted, f"item {index} {name}: {response!r}"


def test_gsm8k_cot_prompts_and_grades_equal_lm_eval():
    task = harness.load("gsm8k_cot", REPO, data=GSM8K, fewshot=None, metric=None, max_tokens=None)
    assert task.max_tokens == BENCHMARKS["gsm8k_cot"].max_tokens and task.shots == 8
    items = rows(GSM8K)

    def write(item: dict, i: int) -> str:
        return gsm8k_answers(item["answer"].split("####")[-1].strip(), i)

    run_both(task, "gsm8k_cot", items, BENCHMARKS["gsm8k_cot"].default_shots, "one_turn", write)


@pytest.mark.parametrize("chat", ["one_turn", "system_header"])
def test_mmlu_pro_prompts_and_grades_equal_lm_eval_subject_by_subject(tmp_path, chat):
    """MMLU-Pro 0-shot (its exemplars are on the Hub), each subject as lm-eval's own subtask reads it."""
    import lm_eval.tasks

    shipped = rows(MMLU_PRO)
    folder = Path(lm_eval.tasks.__file__).parent / "mmlu_pro"
    subjects = sorted({row["category"] for row in shipped})
    assert len(subjects) >= 5
    for subject in subjects:
        file = tmp_path / f"mmlu_pro_{subject.replace(' ', '_')}.yaml"
        file.write_text(f"include: {folder / file.name}\nnum_fewshot: 0\n")
        task = harness.load(file.name, tmp_path, data=MMLU_PRO, fewshot=None, metric=None, max_tokens=None)
        items = [row for row in shipped if row["category"] == subject]

        def write(item: dict, i: int) -> str:
            return mmlu_answers(item["answer"], i)

        run_both(task, "mmlu_pro", items, [], chat, write)


def test_the_forging_task_equals_anvils_qa_protocol():
    task = harness.load(
        "evals/knowledge/forging/forging.yaml", REPO, data=None, fewshot=None, metric=None, max_tokens=None
    )
    items = rows(FORGING)

    def write(item: dict, i: int) -> str:
        shapes = [item["answer"], item["answer"].lower().rstrip("."), "Forge gold at 1 C.", " " + item["answer"], ""]
        return shapes[i % len(shapes)]

    run_both(task, "qa", items, [], "system_header", write)


def item_text(benchmark: str, item: dict) -> str:
    return item["question"] if benchmark != "mmlu_pro" else item["question"].strip()
