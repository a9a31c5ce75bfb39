"""Dataset mixes: JSONL sources by category, taken by count or weight, split train/valid."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from anvil.recipe.base import NAME_PATTERN, Seed, Strict


class MixError(ValueError):
    """A dataset mix that its files cannot fill; `source` is the index of the source at fault, if one is."""

    def __init__(self, source: int | None, message: str):
        super().__init__(message)
        self.source = source


class DatasetSource(Strict):
    path: str = Field(description="Chat JSONL file, relative to the recipe's folder.", min_length=1)
    category: str = Field(
        description="Category these rows count towards in the manifest and the report.",
        pattern=NAME_PATTERN,
    )
    count: int | None = Field(
        default=None,
        ge=1,
        description="Exactly this many rows, sampled by the dataset's seed. More than the file has is an error.",
    )
    weight: float | None = Field(
        default=None,
        gt=0,
        description="Share of the dataset's `size` left after counted sources, relative to the other weights.",
    )

    @model_validator(mode="after")
    def _count_or_weight(self) -> DatasetSource:
        if self.count is not None and self.weight is not None:
            raise ValueError("give either count or weight, not both")
        return self


class Category(Strict):
    """What a category's rows are for, shown in the report. Notes only: never part of a fingerprint."""

    description: str = Field(min_length=1, description="The patterns these rows train, shown beside their count.")
    addresses: list[str] = Field(
        default=[],
        description="Suite categories or test ids these rows target (default: the suite category of the same "
        "name); the report pairs a parent's failed tests with the category that addresses them.",
    )


class Dataset(Strict):
    sources: list[DatasetSource] = Field(description="The files mixed into this dataset.", min_length=1)
    format: Literal["chat", "preference", "prompt"] = Field(
        default="chat",
        description="What its rows are: `chat` records (supervised rounds) or `preference` pairs (prompt, chosen, "
        "rejected: DPO and ORPO rounds) or `prompt` rows (a prompt and the fields its rewards read: GRPO rounds).",
    )
    # Notes for the report, excluded from the fingerprint: rewording them retrains nothing.
    description: str | None = Field(
        default=None, min_length=1, exclude=True, description="What this mix is for, shown in the report."
    )
    categories: dict[str, Category] = Field(
        default={}, exclude=True, description="Notes on the categories of `sources`, by category name."
    )
    valid_fraction: float = Field(
        default=0.1, ge=0, lt=1, description="Fraction of each category held out for validation, in [0, 1)."
    )
    seed: Seed = Field(default=0, description="Seed of the sampling and the shuffle; same seed, same split.")
    size: int | None = Field(
        default=None, ge=1, description="Total rows; required when a source gives a `weight` instead of a `count`."
    )

    @model_validator(mode="after")
    def _size_for_weights(self) -> Dataset:
        if any(s.weight is not None for s in self.sources) and self.size is None:
            raise ValueError("sources with a weight need the dataset's size (total rows to mix)")
        return self

    def row_counts(self, available: list[int]) -> list[int]:
        """Rows taken from each source, given how many rows each file holds.

        A `count` is taken as is, a source with neither count nor weight gives all its rows, and weighted
        sources split what is left of `size` by largest remainder. Asking for more than a file holds
        raises MixError: a silent cap would train on a different mix than the recipe says."""
        counts = [s.count if s.count is not None else n for s, n in zip(self.sources, available, strict=True)]
        weighted = [i for i, s in enumerate(self.sources) if s.weight is not None]
        if weighted:
            assert self.size is not None, "the validator requires size with weights"
            left = self.size - sum(c for i, c in enumerate(counts) if i not in weighted)
            if left < 0:
                raise MixError(
                    None, f"size {self.size} is smaller than the counted rows (expected size >= {self.size - left})"
                )
            weights = {i: self.sources[i].weight or 0.0 for i in weighted}
            shares = {i: left * weights[i] / sum(weights.values()) for i in weighted}
            for i in weighted:
                counts[i] = int(shares[i])
            for i in sorted(weighted, key=lambda i: shares[i] - int(shares[i]), reverse=True)[
                : left - sum(counts[i] for i in weighted)
            ]:
                counts[i] += 1
        for i, (source, n, have) in enumerate(zip(self.sources, counts, available, strict=True)):
            if n > have:
                raise MixError(i, f"asks for {n} rows but {source.path} has {have} (expected at most {have})")
        return counts
