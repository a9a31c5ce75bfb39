"""Evaluation prompts found in training data: exactly (a whole prompt is a whole training message) or by
long n-gram overlap (a 13-word sequence of the prompt appears in a training message: the rule of GPT-3's
and lm-evaluation-harness's decontamination). Pure: texts in, findings out.

Text is compared as words: lowercased, punctuation dropped, split on whitespace, so that formatting and
JSON escapes do not hide a copy. From `prompts_of` on, the functions read the recipe's files."""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from anvil.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from anvil.recipe.load import LoadedRecipe
    from anvil.recipe.models import Recipe
    from anvil.state.hashing import StatCache

N = 13
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation})


def words(text: str) -> list[str]:
    return text.lower().translate(_PUNCTUATION).split()


@dataclass(frozen=True)
class Prompt:
    source: str  # where the prompt comes from: "suite evals/tiny: test edge_contradiction", "gsm8k_cot item 3"
    text: str


@dataclass(frozen=True)
class Finding:
    prompt: str  # Prompt.source
    where: str  # FILE:LINE of the training row
    how: str  # "exact" or the overlapping words

    def __str__(self) -> str:
        how = "the whole prompt" if self.how == "exact" else f'{N} words in common: "{self.how}"'
        return f"{self.prompt} in {self.where} ({how})"


def _remembered(value: object) -> list[Finding] | None:
    if not isinstance(value, list) or not all(
        isinstance(fields, list) and len(fields) == 3 and all(isinstance(f, str) for f in fields) for fields in value
    ):
        return None
    return [Finding(*fields) for fields in value]


class Index:
    """The evaluation side, indexed once: whole prompts and their 13-grams, keyed by first word so that a
    training message is only sliced where an overlap could start."""

    def __init__(self, prompts: Iterable[Prompt]):
        self.exact: dict[tuple[str, ...], str] = {}
        self.grams: dict[tuple[str, ...], str] = {}
        for prompt in prompts:
            tokens = words(prompt.text)
            if tokens:
                self.exact.setdefault(tuple(tokens), prompt.source)
            for i in range(len(tokens) - N + 1):
                self.grams.setdefault(tuple(tokens[i : i + N]), prompt.source)
        self.starts = {gram[0] for gram in self.grams}

    def match(self, text: str) -> tuple[str, str] | None:
        """(prompt source, how) for the first evaluation prompt found in one training message."""
        tokens = words(text)
        if (source := self.exact.get(tuple(tokens))) is not None:
            return source, "exact"
        for i, token in enumerate(tokens[: len(tokens) - N + 1]):
            if token in self.starts and (source := self.grams.get(gram := tuple(tokens[i : i + N]))) is not None:
                return source, " ".join(gram)
        return None


def scan(index: Index, lines: Iterable[bytes], shown_as: str) -> Iterator[Finding]:
    """Findings in one training JSONL file (chat records or preference pairs), a row at most once; rows that
    are neither are skipped (reading the rows reports them)."""
    for lineno, raw in enumerate(lines, start=1):
        try:
            row = json.loads(raw)
            if "messages" in row:
                texts = [m["content"] for m in row["messages"] if isinstance(m.get("content"), str)]
            else:
                texts = [row[k] for k in ("system", "prompt", "chosen", "rejected") if isinstance(row.get(k), str)]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            continue
        for text in texts:
            if found := index.match(text):
                yield Finding(found[0], f"{shown_as}:{lineno}", found[1])
                break


def prompts_of(loaded: LoadedRecipe) -> list[Prompt]:
    """Every prompt a recipe evaluates with: the suites' user turns, and the questions of the
    knowledge benchmarks read from local files (`path:`; rows on the Hub are not downloaded to check), but
    those that say they overlap training on purpose (`overlaps_training`)."""
    found = []
    for folder, tests in loaded.suites.items():
        for test in tests:
            for text in test.turns:  # not the system prompt: sharing one with training is no leak
                found.append(Prompt(f"suite {folder}: test {test.id}", text))
    for bench in loaded.recipe.eval.knowledge if loaded.recipe.eval else []:
        if bench.data and bench.data.startswith("path:") and not bench.overlaps_training:
            with open(loaded.root / bench.data.removeprefix("path:"), "rb") as lines:
                for lineno, raw in enumerate(lines, start=1):
                    try:
                        question = json.loads(raw).get("question")
                    except (ValueError, AttributeError, RecursionError):
                        continue
                    if isinstance(question, str):
                        found.append(
                            Prompt(
                                f"{bench.benchmark or bench.task} item at {bench.data.removeprefix('path:')}:{lineno}",
                                question,
                            )
                        )
    return found


def training_files(recipe: Recipe) -> list[str]:
    return list(dict.fromkeys(s.path for d in recipe.datasets.values() for s in d.sources))


def find(loaded: LoadedRecipe, prompts: list[Prompt]) -> list[Finding]:
    index = Index(prompts)
    found: list[Finding] = []
    for path in training_files(loaded.recipe):
        with open(loaded.root / path, "rb") as lines:
            found += scan(index, lines, path)
    return found


def described(found: list[Finding], shown: int = 5) -> str:
    """The findings as a person reads them: counts, then the first few, each with its file and line."""
    prompts = len({f.prompt for f in found})
    lines = [
        f"{prompts} evaluation prompt{'s' if prompts != 1 else ''} found in training data "
        f"({len(found)} row{'s' if len(found) != 1 else ''}):"
    ]
    lines += [f"  {finding}" for finding in found[:shown]]
    if len(found) > shown:
        lines.append(f"  and {len(found) - shown} more")
    return "\n".join(lines)


def warning(loaded: LoadedRecipe, hashes: StatCache, shown_as: str) -> str | None:
    """What `validate` and `plan` say of the recipe's contamination, or InvalidInput when the recipe makes it
    an error. The findings are remembered by the digests of every prompt and training file."""
    mode = loaded.recipe.eval.contamination if loaded.recipe.eval else "off"
    if mode == "off":
        return None
    prompts = prompts_of(loaded)
    files = [(path, hashes.file(loaded.root / path)) for path in training_files(loaded.recipe)]
    facts = json.dumps([N, [(p.source, p.text) for p in prompts], files])
    key = "contamination:" + hashlib.sha256(facts.encode()).hexdigest()
    found = _remembered(hashes.facts.get(key))
    if found is None:  # never looked, or what the cache holds is not a list of findings (edited by hand)
        found = find(loaded, prompts)
        hashes.facts[key] = [list(asdict(f).values()) for f in found]
        hashes.dirty = True
    if not found:
        return None
    if mode == "error":
        hint = '\n(eval.contamination = "error": remove those rows, or set it to "warn")'
        raise InvalidInput([Problem(shown_as, 0, 0, "eval.contamination", described(found) + hint)])
    return described(found)
