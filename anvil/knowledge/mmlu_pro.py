"""MMLU-Pro as lm-evaluation-harness runs it (task mmlu_pro, version 3.1): a per-subject header, 5
chain-of-thought exemplars of the question's subject from the validation split, `Question: ... Options:
A. ... Answer: Let's think step by step.`, greedy until `Question:`, graded by the first
`answer is (X)`. The validation split does not ship with Anvil: without a few-shot file the run is
0-shot CoT, and its metric says so (`mmlu_pro_0shot`)."""

from __future__ import annotations

import re

from anvil.knowledge.protocol import Benchmark, Graded, Item

LETTERS = "ABCDEFGHIJ"
SHOTS = 5  # exemplars of the item's own subject
ANSWER = re.compile(r"answer is \(?([ABCDEFGHIJ])\)?")
HEADER = (
    "The following are multiple choice questions (with answers) about {subject}. Think step by step and "
    'then finish your answer with "the answer is (X)" where X is the correct letter choice.\n'
)


def check(item: Item) -> str | None:
    options = item.get("options")
    if not isinstance(item.get("question"), str) or not isinstance(options, list) or not options:
        return "expected an MMLU-Pro row: {question, options, answer, category}"
    if not isinstance(item.get("answer"), str) or item["answer"] not in LETTERS[: len(options)]:
        return f"answer {item.get('answer')!r} is not one of the options' letters"
    return None if isinstance(item.get("category"), str) else "the row has no category (its subject)"


def shot_check(item: Item) -> str | None:
    if (why := check(item)) is not None:
        return why
    return None if isinstance(item.get("cot_content"), str) else "the exemplar has no `cot_content` (its worked answer)"


def key(item: Item) -> str:
    return str(item.get("question_id", item["question"]))


def question(item: Item) -> str:
    lines = [f"Question:\n{item['question']}", "Options:"]
    lines += [f"{letter}. {option.strip()}" for letter, option in zip(LETTERS, item["options"], strict=False)]
    return "\n".join(lines) + "\nAnswer: Let's think step by step."


def prompt(item: Item, shots: list[Item]) -> str:
    subject_shots = [s for s in shots if s.get("category") == item["category"]][:SHOTS]
    blocks = [question(s) + " " + s["cot_content"].replace("A: Let's think step by step. ", "") for s in subject_shots]
    return "\n\n".join([*blocks, question(item)])


def header(item: Item) -> str:
    return HEADER.format(subject=item["category"])


def extract(answer: str, item: Item) -> Graded:
    found = ANSWER.search(answer)
    letter = found.group(1) if found else None
    return Graded(letter, letter is not None and letter == item["answer"].strip().upper())


BENCHMARK = Benchmark(
    name="mmlu_pro",
    title="MMLU-Pro",
    key=key,
    check=check,
    shot_check=shot_check,
    prompt=prompt,
    stop=("Question:",),
    filters={"custom": extract},
    default_shots=[],
    shots_needed=SHOTS,
    max_tokens=2048,
    hub_data="hf:TIGER-Lab/MMLU-Pro/data/test-00000-of-00001.parquet",
    hub_fewshot="hf:TIGER-Lab/MMLU-Pro/data/validation-00000-of-00001.parquet",
    shots_by="category",
    header=header,
    groups="category",
)
