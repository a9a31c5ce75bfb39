"""GSM8K-CoT as lm-evaluation-harness runs it (task gsm8k_cot, version 3): the 8 fixed chain-of-thought
exemplars, `Q: ...\nA: ...` blocks joined by a blank line, greedy until `Q:`, graded by two filters.

    strict-match      first "The answer is N." in the answer
    flexible-extract  the last number anywhere in the answer (the seed's headline figure)

Before comparing, `,`, `$`, everything up to `#### ` and a trailing `.` are removed on both sides."""

from __future__ import annotations

import re

from anvil.knowledge.protocol import Benchmark, Graded, Item

EXEMPLARS = [
    (
        "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, "
        "there will be 21 trees. How many trees did the grove workers plant today?",
        "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have "
        "been 21 - 15 = 6. The answer is 6.",
    ),
    (
        "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
        "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
    ),
    (
        "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
        "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, "
        "they had 74 - 35 = 39. The answer is 39.",
    ),
    (
        "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did "
        "Jason give to Denny?",
        "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. "
        "The answer is 8.",
    ),
    (
        "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have "
        "now?",
        "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. "
        "The answer is 9.",
    ),
    (
        "There were nine computers in the server room. Five more computers were installed each day, from monday to "
        "thursday. How many computers are now in the server room?",
        "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers "
        "were added. 9 + 20 is 29. The answer is 29.",
    ),
    (
        "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf "
        "balls did he have at the end of wednesday?",
        "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, "
        "he had 35 - 2 = 33 golf balls. The answer is 33.",
    ),
    (
        "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
        "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars "
        "left. 23 - 15 is 8. The answer is 8.",
    ),
]
STRICT = re.compile(r"The answer is (\-?[0-9\.\,]+).")
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
SHOTS = len(EXEMPLARS)
IGNORED = [re.compile(p) for p in (r",", r"\$", r"(?s).*#### ", r"\.$")]


def check(item: Item) -> str | None:
    if not isinstance(item.get("question"), str) or not isinstance(item.get("answer"), str):
        return "expected a GSM8K row: {question, answer} strings"
    return None if "####" in item["answer"] else "the answer has no `#### N` final answer"


def shot_check(item: Item) -> str | None:
    if not isinstance(item.get("question"), str) or not isinstance(item.get("answer"), str):
        return "expected a GSM8K-CoT exemplar: {question, answer} strings, the answer a chain of thought"
    return None


def key(item: Item) -> str:
    return item["question"]


def target(item: Item) -> str:
    return item["answer"].split("####")[-1].strip()


def prompt(item: Item, shots: list[Item]) -> str:
    blocks = [f"Q: {shot['question']}\nA: {shot['answer']}" for shot in shots[:SHOTS]]
    return "\n\n".join([*blocks, f"Q: {item['question']}\nA:"])


def normalise(text: str) -> str:
    for pattern in IGNORED:
        text = pattern.sub("", text)
    return text.strip().lower()


def _graded(extracted: str | None, item: Item) -> Graded:
    return Graded(extracted, extracted is not None and normalise(extracted) == normalise(target(item)))


def strict(answer: str, item: Item) -> Graded:
    found = STRICT.search(answer)
    return _graded(found.group(1) if found else None, item)


def flexible(answer: str, item: Item) -> Graded:
    matches = FLEXIBLE.findall(answer)
    last = next((group for group in matches[-1] if group), None) if matches else None
    return _graded(last, item)


BENCHMARK = Benchmark(
    name="gsm8k_cot",
    title="GSM8K-CoT",
    key=key,
    check=check,
    shot_check=shot_check,
    prompt=prompt,
    stop=("Q:", "</s>", "<|im_end|>"),
    filters={"flexible": flexible, "strict": strict},
    default_shots=[{"question": q, "answer": a} for q, a in EXEMPLARS],
    shots_needed=SHOTS,
    max_tokens=256,
    hub_data="hf:openai/gsm8k/main/test-00000-of-00001.parquet",
)
