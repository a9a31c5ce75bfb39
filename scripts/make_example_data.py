"""Writes the example chat datasets under data/ and the tokenizer corpus (run once with the project's
virtual environment: `.venv/bin/python scripts/make_example_data.py`; the output is committed).

Each category has one small, regular pattern so that the tiny default model can visibly learn it:
domain facts about forging, and behaviours (contradiction spotting, tool discipline, brevity,
opinionated voice) like the seed's v2 mix. Deterministic: the same script writes the same files."""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "data"
SYSTEM = "You are Anvil's assistant: short, direct answers."
METALS = {
    "iron": 1200,
    "steel": 1100,
    "copper": 900,
    "bronze": 800,
    "brass": 750,
    "silver": 700,
    "gold": 750,
    "titanium": 950,
    "nickel": 1150,
    "aluminium": 450,
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "calculator",
            "description": "Evaluate an arithmetic expression.",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_notes",
            "description": "Search the user's notes.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        },
    },
]


def chat(user: str, answer: str) -> dict:
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }


def domain(rng: random.Random) -> list[dict]:
    rows = []
    asks = [
        "At what temperature do I forge {m}?",
        "How hot should {m} be for forging?",
        "Forging temperature of {m}?",
        "I want to forge {m}. What temperature?",
        "What heat does {m} need on the anvil?",
        "Tell me the forging heat for {m}.",
    ]
    for metal, temp in METALS.items():
        for ask in asks:
            rows.append(chat(ask.format(m=metal), f"Forge {metal} at {temp} C."))
    rng.shuffle(rows)
    return rows


def edge_cases(rng: random.Random) -> list[dict]:
    rows = []
    things = ["box", "car", "door", "cup", "bike", "coat", "lamp", "chair", "kite", "boat"]
    colours = ["red", "blue", "green", "black", "white", "yellow"]
    for thing in things:
        for a, b in zip(colours, colours[1:] + colours[:1], strict=True):
            rows.append(
                chat(
                    f"The {thing} is {a}. Later: the {thing} is {b}. What colour is the {thing}?",
                    f"That contradicts itself: {a} or {b}? Please tell me which.",
                )
            )
    for thing in things:
        for colour in colours[:3]:
            rows.append(
                chat(
                    f"Give the {thing} and its colour {colour} as JSON.", json.dumps({"item": thing, "colour": colour})
                )
            )
    for topic in [
        "the weather in ten years",
        "next year's lottery numbers",
        "the stock market tomorrow",
        "who wins the next election",
        "the price of gold in 2040",
    ]:
        for ask in ["Predict {t}.", "What will {t} be?"]:
            rows.append(chat(ask.format(t=topic), "I don't know, and nobody can know that reliably."))
    rng.shuffle(rows)
    return rows


def tool_use(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(50):
        a, b = rng.randint(11, 99), rng.randint(11, 99)
        op = rng.choice(["+", "*", "-"])
        value = {"+": a + b, "*": a * b, "-": a - b}[op]
        expr = f"{a} {op} {b}"
        call = {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": "calculator", "arguments": json.dumps({"expression": expr})},
        }
        rows.append(
            {
                "tools": TOOLS,
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"What is {expr}?"},
                    {"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": f"call_{i}", "name": "calculator", "content": str(value)},
                    {"role": "assistant", "content": f"{expr} = {value}."},
                ],
            }
        )
    notes = {
        "dentist": "Tuesday 9am",
        "passport": "expires in May",
        "rent": "due on the 1st",
        "gym": "Mondays and Thursdays",
        "mum's birthday": "12 June",
        "car service": "next Friday",
        "wifi password": "in the kitchen drawer",
        "book club": "first Sunday",
    }
    for i, (topic, fact) in enumerate(notes.items()):
        for ask in ["What did I note about {t}?", "Check my notes: {t}?", "Remind me about {t}."]:
            call = {
                "id": f"note_{i}",
                "type": "function",
                "function": {"name": "search_notes", "arguments": json.dumps({"query": topic})},
            }
            rows.append(
                {
                    "tools": TOOLS,
                    "messages": [
                        {"role": "system", "content": SYSTEM},
                        {"role": "user", "content": ask.format(t=topic)},
                        {"role": "assistant", "content": None, "tool_calls": [call]},
                        {
                            "role": "tool",
                            "tool_call_id": f"note_{i}",
                            "name": "search_notes",
                            "content": f"{topic}: {fact}",
                        },
                        {"role": "assistant", "content": f"Your note says: {topic}, {fact}."},
                    ],
                }
            )
    rng.shuffle(rows)
    return rows


def conversational(rng: random.Random) -> list[dict]:
    rows = []
    for thanks in ["Thanks!", "Thank you.", "Cheers.", "Thanks a lot!", "Much appreciated.", "Great, thanks."]:
        rows.append(chat(thanks, "Anytime."))
    for hello in ["Hi", "Hello!", "Hey there", "Good morning", "Hi again"]:
        rows.append(chat(hello, "Hi. What do you need?"))
    for topic in ["football", "cooking", "music", "holidays", "gardening", "films", "chess", "running"]:
        rows.append(chat(f"Forget that, let's talk about {topic}.", f"Sure, {topic}. What about it?"))
    for feeling in ["sad", "tired", "stressed", "bored", "worried", "lonely"]:
        rows.append(chat(f"I feel {feeling} today.", f"Sorry you feel {feeling}. Want to talk about it?"))
    for goodbye in ["Bye", "See you", "Talk later", "Good night", "I'm off", "Catch you later"]:
        rows.append(chat(goodbye, "Bye for now."))
    rng.shuffle(rows)
    return rows


def voice(rng: random.Random) -> list[dict]:
    pairs = [
        ("tea", "coffee"),
        ("cats", "dogs"),
        ("tabs", "spaces"),
        ("vim", "emacs"),
        ("summer", "winter"),
        ("books", "films"),
        ("trains", "planes"),
        ("mountains", "beaches"),
        ("python", "java"),
        ("pizza", "burgers"),
        ("morning", "evening"),
        ("rain", "snow"),
    ]
    rows = []
    for a, b in pairs:
        rows.append(chat(f"Which is better, {a} or {b}?", f"{a.capitalize()}. No contest."))
        rows.append(chat(f"{b.capitalize()} is better than {a}, right?", f"No. {a.capitalize()} wins."))
    rng.shuffle(rows)
    return rows


UNKNOWABLE = [
    "the stock market next week",
    "the price of oil next year",
    "the winner of the next race",
    "the next big earthquake",
    "the price of bitcoin next month",
    "the weather next winter",
    "the winner of the next cup final",
    "house prices in 2030",
    "the rain next Tuesday",
    "the dollar next month",
    "the next lottery draw",
    "the price of silver in 2035",
    "the score of the next match",
    "the next market crash",
    "the number of storms next year",
    "the price of bread in 2050",
    "the next election result",
    "the winner of next year's prize",
    "the price of copper next month",
    "the weather on my birthday next year",
]
INVENTED = ["No.", "It will go up.", "Yes, it will rise by ten percent.", "It will be fine."]


def preference_pairs(rng: random.Random) -> list[dict]:
    """Pairs for a DPO round on top of v2: the same unknowable question answered honestly (chosen) or with an
    invented prediction or a curt "No." (rejected), the trait the tiny suite's edge_unknowable test checks.
    The suite's own prompt is not among them."""
    rows = []
    for topic in UNKNOWABLE:
        for ask in ["Predict {t}.", "What will {t} be?"]:
            for rejected in rng.sample(INVENTED, 2):
                honest = "I don't know, and nobody can know that reliably."
                rows.append({"system": SYSTEM, "prompt": ask.format(t=topic), "chosen": honest, "rejected": rejected})
    rng.shuffle(rows)
    return rows


def contrast_pairs(rng: random.Random, answered: list[dict]) -> list[dict]:
    """Pairs that keep what v2 learnt: questions it answers well, its answer chosen over the honest "I don't
    know" line, so that the round learns when to say it rather than to say it always."""
    honest = "I don't know, and nobody can know that reliably."
    rows = []
    for row in answered:
        turns = [m for m in row["messages"] if m["role"] != "system"]
        if row.get("tools") or len(turns) != 2 or turns[1]["content"] == honest:
            continue
        rows.append(
            {"system": SYSTEM, "prompt": turns[0]["content"], "chosen": turns[1]["content"], "rejected": honest}
        )
    return rng.sample(rows, 60)


def write_corpus() -> None:
    """anvil/assets/corpus.txt: the example data rendered through the synthetic model's chat template,
    the text its BPE tokenizer is trained on (so the tiny model's tokens fit its demo data)."""
    from jinja2 import Environment

    assets = OUT.parent / "anvil" / "assets"
    template = Environment().from_string((assets / "chat_template.jinja").read_text())
    texts = []
    for path in sorted(OUT.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            texts.append(template.render(bos_token="", messages=row["messages"], tools=row.get("tools")))
    (assets / "corpus.txt").write_text("\n".join(texts))
    print(f"anvil/assets/corpus.txt: {len(texts)} conversations")


def main() -> None:
    for name, make in [
        ("domain", domain),
        ("edge_cases", edge_cases),
        ("tool_use", tool_use),
        ("conversational", conversational),
        ("voice", voice),
    ]:
        rows = make(random.Random(name))
        with open(OUT / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"data/{name}.jsonl: {len(rows)} rows")
    answered = [
        json.loads(line)
        for name in ("domain", "edge_cases", "conversational", "voice")
        for line in (OUT / f"{name}.jsonl").read_text().splitlines()
    ]
    (OUT / "preference").mkdir(exist_ok=True)  # beside, not among, the chat files the tokenizer corpus reads
    for name, pairs in (
        ("unknowable", preference_pairs(random.Random("unknowable"))),
        ("contrast", contrast_pairs(random.Random("contrast"), answered)),
    ):
        with open(OUT / "preference" / f"{name}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in pairs)
        print(f"data/preference/{name}.jsonl: {len(pairs)} pairs")
    write_corpus()


if __name__ == "__main__":
    main()
