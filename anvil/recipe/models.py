"""The recipe language: pydantic models are the single source of truth for validation, the JSON Schema
in `schema/` and the field reference. Every field carries a description; a test checks it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
SOURCE_PATTERN = r"^(hf|path|synthetic):.+$"


class MixError(ValueError):
    """A dataset mix that its files cannot fill; `source` is the index of the source at fault, if one is."""

    def __init__(self, source: int | None, message: str):
        super().__init__(message)
        self.source = source


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectInfo(Strict):
    name: str = Field(description="Name of the lineage, shown in plans, status and the report.", min_length=1)


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


class Dataset(Strict):
    sources: list[DatasetSource] = Field(description="The files mixed into this dataset.", min_length=1)
    valid_fraction: float = Field(
        default=0.1, ge=0, lt=1, description="Fraction of each category held out for validation, in [0, 1)."
    )
    seed: int = Field(default=0, description="Seed of the sampling and the shuffle; same seed, same split.")
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
            left = self.size - sum(c for i, c in enumerate(counts) if i not in weighted)
            if left < 0:
                raise MixError(
                    None, f"size {self.size} is smaller than the counted rows (expected size >= {self.size - left})"
                )
            total = sum(self.sources[i].weight for i in weighted)
            shares = {i: left * self.sources[i].weight / total for i in weighted}
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


LoraTarget = Literal["attention", "mlp", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class Lora(Strict):
    rank: int = Field(default=8, ge=1, description="LoRA rank r of the A (in x r) and B (r x out) matrices.")
    scale: float = Field(default=10.0, gt=0, description="LoRA scale: the update is scale * x @ A @ B.")
    dropout: float = Field(default=0.0, ge=0, lt=1, description="Dropout on the LoRA input, in [0, 1).")
    last_layers: int = Field(default=16, ge=1, description="Train adapters on the last N transformer layers.")
    targets: list[LoraTarget] = Field(
        default=["attention", "mlp"],
        min_length=1,
        description="Projections to adapt: `attention` (q/k/v/o), `mlp` (gate/up/down), or single projections.",
    )


class Train(Strict):
    steps: int = Field(default=100, ge=1, description="Optimiser steps (mlx-lm-lora's iters).")
    batch_size: int = Field(default=1, ge=1, description="Sequences per step.")
    learning_rate: float = Field(default=1e-5, gt=0, description="Peak learning rate of the Adam optimiser.")
    lr_schedule: Literal["constant", "cosine"] = Field(
        default="constant", description="Learning-rate schedule after warm-up."
    )
    warmup_steps: int = Field(default=0, ge=0, description="Linear warm-up steps before the schedule starts.")
    max_seq_length: int = Field(default=2048, ge=16, description="Longer sequences are truncated.")
    grad_checkpoint: bool = Field(default=False, description="Recompute activations to save memory.")
    seed: int = Field(default=0, description="Seed of the adapter initialisation and batch order.")
    mask_prompt: bool = Field(
        default=False,
        description="Train on the last assistant turn only (mlx-lm-lora's mask_prompt); off trains on every "
        "turn, tool calls included.",
    )
    val_interval: int = Field(default=50, ge=1, description="Compute the validation loss every N steps.")
    val_batches: int = Field(default=8, ge=1, description="Batches in each validation-loss computation.")
    checkpoint_interval: int = Field(
        default=100, ge=1, description="Save a resumable adapter checkpoint every N steps."
    )


class Synthetic(Strict):
    """Sizes of the tiny offline Gemma 4 that a `synthetic:` source builds (random weights, real architecture)."""

    hidden_size: int = Field(default=64, ge=16, description="Width of the text model.")
    num_layers: int = Field(default=4, ge=1, description="Text transformer layers.")
    num_heads: int = Field(default=2, ge=1, description="Attention heads (one key/value head).")
    head_dim: int = Field(default=32, ge=8, description="Width of one attention head.")
    intermediate_size: int = Field(default=128, ge=16, description="Width of the MLP.")
    vocab_size: int = Field(default=1024, ge=300, le=65536, description="BPE vocabulary trained on Anvil's corpus.")
    vision_layers: int = Field(default=1, ge=1, description="Layers of the (random) vision tower.")
    seed: int = Field(default=0, description="Seed of the random weights.")


class Model(Strict):
    source: str | None = Field(
        default=None,
        pattern=SOURCE_PATTERN,
        description="Root weights: `hf:ORG/NAME`, `path:DIR` or `synthetic:NAME` (a tiny offline Gemma 4). "
        "Exactly one of source and parent.",
    )
    parent: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Model whose fused weights this round trains on. Exactly one of source and parent.",
    )
    revision: str | None = Field(
        default=None,
        min_length=1,
        description="Branch, tag or commit of an `hf:` source (default: the main branch); the commit it "
        "resolves to is recorded with the source.",
    )
    synthetic: Synthetic | None = Field(
        default=None, description="Sizes of a `synthetic:` source; defaults when omitted."
    )
    dataset: str | None = Field(default=None, description="Dataset this round trains on (needs a parent).")
    lora: Lora | None = Field(default=None, description="LoRA adapter settings (needs a parent).")
    train: Train | None = Field(default=None, description="Optimiser settings (needs a parent).")

    @model_validator(mode="after")
    def _root_or_round(self) -> Model:
        if (self.source is None) == (self.parent is None):
            raise ValueError("give exactly one of source (a root model) or parent (a training round)")
        if self.synthetic is not None and not (self.source or "").startswith("synthetic:"):
            raise ValueError("synthetic sizes need a `synthetic:` source")
        if self.revision is not None and not (self.source or "").startswith("hf:"):
            raise ValueError("a revision needs an `hf:` source")
        if self.source is not None and (self.dataset or self.lora or self.train):
            raise ValueError("a root model (source) takes no dataset, lora or train; those belong to rounds")
        if self.parent is not None and self.dataset is None:
            raise ValueError("a training round (parent) needs a dataset")
        return self


class KvCache(Strict):
    quantization: Literal["none", "uniform", "turboquant"] = Field(
        default="none", description="KV-cache quantization scheme of mlx-vlm's server."
    )
    bits: Literal[2, 3, 4, 8] = Field(default=4, description="Bits per KV-cache element when quantized.")
    group_size: int = Field(default=64, ge=8, description="Quantization group size (uniform scheme).")
    start: int = Field(default=0, ge=0, description="Tokens kept unquantized before quantization starts.")


class Serve(Strict):
    model: str | None = Field(
        default=None, description="Model node that `apply` keeps served once its gates pass; none serves nothing."
    )
    host: str = Field(default="127.0.0.1", description="Interface to listen on; loopback unless you mean otherwise.")
    port: int = Field(default=8092, ge=1, le=65535, description="TCP port of the OpenAI-compatible server.")
    kv_cache: KvCache = Field(default_factory=KvCache, description="KV-cache quantization.")
    max_tokens: int = Field(default=512, ge=1, description="Default cap on generated tokens per request.")
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the API key requests must carry."
    )


class Judge(Strict):
    kind: Literal["rules", "command", "openai"] = Field(
        default="rules",
        description="`rules` (deterministic checks), `command` (a program reading the prompt on stdin), "
        "or `openai` (an OpenAI-compatible endpoint).",
    )
    argv: list[str] | None = Field(default=None, min_length=1, description="Program and arguments (kind command).")
    url: str | None = Field(default=None, description="Base URL of the endpoint (kind openai).")
    model: str | None = Field(default=None, description="Judge model name (kind openai).")
    api_key_env: str | None = Field(default=None, description="Environment variable with the judge's API key.")
    timeout_s: float = Field(default=120.0, gt=0, description="Seconds one judge call may take.")
    retries: int = Field(default=3, ge=1, le=10, description="Attempts per judge call, with exponential backoff.")

    @model_validator(mode="after")
    def _kind_needs(self) -> Judge:
        if self.kind == "command" and not self.argv:
            raise ValueError("a command judge needs argv, e.g. argv = ['claude', '-p']")
        if self.kind == "openai" and not (self.url and self.model):
            raise ValueError("an openai judge needs url and model")
        return self


class Knowledge(Strict):
    benchmark: Literal["gsm8k_cot", "mmlu_pro"] = Field(description="Knowledge-preservation benchmark.")
    n: int = Field(default=100, ge=1, description="Items sampled from the benchmark.")


class Eval(Strict):
    runs: int = Field(default=3, ge=1, description="Runs per test, each with its own sampling seed, averaged.")
    temperature: float = Field(default=0.7, ge=0, le=2, description="Sampling temperature of the evaluated model.")
    max_tokens: int = Field(default=96, ge=1, description="Generated tokens per model turn.")
    high_variance: float = Field(
        default=2.0, gt=0, description="Flag a test whose run scores spread (max - min) by at least this much."
    )
    compare: list[str] = Field(default=[], description="Model nodes scored side by side.")
    judge: Judge = Field(default_factory=Judge, description="Who scores the behavioural suite.")
    suites: list[str] = Field(default=[], description="Suite folders, relative to the recipe's folder.")
    knowledge: list[Knowledge] = Field(default=[], description="Knowledge-preservation benchmarks.")


class Gate(Strict):
    model: str = Field(description="Model node the gate applies to.")
    metric: str = Field(
        description="Metric path: `SUITE.composite`, `SUITE.category.NAME`, `SUITE.test.ID`, "
        "`SUITE.delta_vs_base` or `SUITE.delta_vs_parent` (SUITE: the suite folder's name)."
    )
    min: float | None = Field(default=None, description="Fail when the metric is below this.")
    max: float | None = Field(default=None, description="Fail when the metric is above this.")

    @model_validator(mode="after")
    def _a_bound(self) -> Gate:
        if self.min is None and self.max is None:
            raise ValueError("a gate needs min, max or both")
        return self


class Recipe(Strict):
    """An Anvil recipe: a lineage of models, the datasets they train on, serving, evaluation and gates."""

    project: ProjectInfo = Field(description="Project settings.")
    models: dict[str, Model] = Field(default={}, description="Model nodes: roots with a source, rounds with a parent.")
    datasets: dict[str, Dataset] = Field(default={}, description="Dataset mixes, by name.")
    serve: Serve | None = Field(default=None, description="The OpenAI-compatible server Anvil keeps running.")
    eval: Eval | None = Field(default=None, description="Evaluation: suites, judge, runs, benchmarks.")
    gates: list[Gate] = Field(default=[], description="Thresholds a model must meet to be promoted.")

    def lineage(self, model: str) -> list[str]:
        """`model`, its parent, the parent's parent, ... up to its root; stops before a name repeats (a
        cycle, reported by the checks) or is undefined."""
        chain = [model]
        while (parent := self.models[chain[-1]].parent) in self.models and parent not in chain:
            chain.append(parent)
        return chain

    def root_of(self, model: str) -> str:
        return self.lineage(model)[-1]
