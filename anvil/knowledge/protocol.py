"""What a knowledge benchmark is to Anvil: how to check and key its items, how to prompt one, when to
stop generating, and how to grade an answer under each of its filters (the first is the headline
score)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Item = dict[str, Any]


@dataclass(frozen=True)
class Graded:
    extracted: str | None  # what the filter took from the answer; None: nothing matched ("invalid")
    correct: bool


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str  # as the seed's table writes it: "GSM8K-CoT", "MMLU-Pro"
    key: Callable[[Item], str]  # a stable id of an item, to pair models item by item
    check: Callable[[Item], str | None]  # why an item is malformed (None: it is fine)
    shot_check: Callable[[Item], str | None]  # why a few-shot exemplar is malformed
    prompt: Callable[[Item, list[Item]], str]  # the item after its few-shot exemplars, without the header
    stop: tuple[str, ...]  # generation ends at the first of these (greedy)
    filters: dict[str, Callable[[str, Item], Graded]]  # name -> grading; the first is the headline
    default_shots: list[Item]  # the protocol's exemplars when they ship with it (GSM8K-CoT's 8)
    shots_needed: int  # exemplars the protocol uses; fewer available means another protocol
    max_tokens: int  # the protocol's generation budget
    hub_data: str  # where its test split lives on the Hugging Face Hub (a `data` setting)
    hub_fewshot: str | None = None  # and its few-shot split, when not shipped with the protocol
    shots_by: str | None = None  # the item field its exemplars must share (MMLU-Pro: the subject); None: any
    header: Callable[[Item], str] | None = None  # lm-eval's `description` before the exemplars; None: none
    groups: str | None = None  # the item field lm-eval reports sub-scores by (MMLU-Pro: its 14 subjects)
    chat_turns: Callable[[Item, list[Item], str], list[dict[str, str]]] | None = None  # its own turns (qa)

    def messages(self, item: Item, shots: list[Item], form: str) -> list[dict[str, str]]:
        """The chat turns of an item: one user turn (`one_turn`), or the header as a system turn and the rest
        as the user's (`system_header`, lm-eval's `--apply_chat_template`)."""
        if self.chat_turns is not None:
            return self.chat_turns(item, shots, form)
        head, body = self.header(item) if self.header else "", self.prompt(item, shots)
        if form == "system_header" and head:
            return [{"role": "system", "content": head}, {"role": "user", "content": body}]
        return [{"role": "user", "content": head + body}]


def truncate(text: str, stops: tuple[str, ...]) -> str:
    """The answer up to the first stop sequence, as a harness that stops generating there sees it."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]
