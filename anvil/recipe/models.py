"""The recipe language: pydantic models, the single source of truth for validation, the JSON Schema in
`schema/` and the field reference; every field carries a description (a test checks it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from anvil.methods.preference import Preference
from anvil.methods.registry import METHODS, TABLES, Method, settings_in
from anvil.methods.rewards import Grpo
from anvil.recipe.base import NAME_PATTERN, ONE_LINE, SOURCE_PATTERN, Seed, Strict
from anvil.recipe.datasets import Dataset
from anvil.recipe.evaluation import Eval, Gate
from anvil.recipe.infrastructure import Distributed, Machine, StoreConfig
from anvil.recipe.quantization import Quantize
from anvil.recipe.serving import Parity, Serve
from anvil.recipe.sweep import MAX_VARIANTS, Select, combinations, setting_problem, variants


class ProjectInfo(Strict):
    name: str = Field(description="The lineage's name (one line).", min_length=1, max_length=200, pattern=ONE_LINE)
    license: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9.-]*$",
        description="The license its models are released under, as the Hugging Face Hub names it (`apache-2.0`, "
        "`gemma`, `other` ...): `anvil export` writes it on the model card.",
    )


LoraTarget = Literal["attention", "mlp", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class Lora(Strict):
    rank: int = Field(default=8, ge=1, le=4096, description="LoRA rank r of the A (in x r) and B (r x out) matrices.")
    scale: float = Field(default=10.0, gt=0, le=1e4, description="LoRA scale: the update is scale * x @ A @ B.")
    dropout: float = Field(default=0.0, ge=0, lt=1, description="Dropout on the LoRA input, in [0, 1).")
    last_layers: int = Field(default=16, ge=1, le=1024, description="Train adapters on the last N transformer layers.")
    targets: list[LoraTarget] = Field(
        default=["attention", "mlp"],
        min_length=1,
        description="Projections to adapt: `attention` (q/k/v/o), `mlp` (gate/up/down), or single projections.",
    )


PROJECTIONS = {
    "attention": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"],
    "mlp": ["mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"],
}


def lora_keys(targets: Sequence[str]) -> list[str]:
    """The projections `lora.targets` adapt, as mlx-lm's LoRA `keys` name them (e.g. `self_attn.q_proj`)."""
    keys: list[str] = []
    for target in targets:
        for key in PROJECTIONS.get(target, [f"self_attn.{target}" if target[0] in "qkvo" else f"mlp.{target}"]):
            if key not in keys:
                keys.append(key)
    return keys


class Train(Strict):
    steps: int = Field(default=100, ge=1, le=10_000_000, description="Optimiser steps (mlx-lm-lora's iters).")
    batch_size: int = Field(default=1, ge=1, le=65536, description="Sequences per step.")
    learning_rate: float = Field(default=1e-5, gt=0, le=1, description="Peak learning rate of the Adam optimiser.")
    lr_schedule: Literal["constant", "cosine"] = Field(
        default="constant", description="Learning-rate schedule after warm-up."
    )
    warmup_steps: int = Field(
        default=0, ge=0, le=10_000_000, description="Linear warm-up steps before the schedule starts."
    )
    max_seq_length: int = Field(default=2048, ge=16, le=1_048_576, description="Longer sequences are truncated.")
    grad_checkpoint: bool = Field(default=False, description="Recompute activations to save memory.")
    seed: Seed = Field(default=0, description="Seed of the adapter initialisation and batch order.")
    mask_prompt: bool = Field(
        default=False,
        description="Train on the last assistant turn only (mlx-lm-lora's mask_prompt); off trains on every "
        "turn, tool calls included.",
    )
    val_interval: int = Field(default=50, ge=1, le=10_000_000, description="Compute the validation loss every N steps.")
    val_batches: int = Field(default=8, ge=1, le=100_000, description="Batches in each validation-loss computation.")
    checkpoint_interval: int = Field(
        default=100, ge=1, le=10_000_000, description="Save a resumable adapter checkpoint every N steps."
    )

    @model_validator(mode="after")
    def _warmup_within_steps(self) -> Train:
        if self.warmup_steps > self.steps:
            raise ValueError(f"warmup_steps {self.warmup_steps} is more than steps {self.steps} (expected at most)")
        return self


class Synthetic(Strict):
    """Sizes of the tiny offline Gemma 4 that a `synthetic:` source builds (random weights, real architecture)."""

    hidden_size: int = Field(default=64, ge=16, le=16384, description="Width of the text model.")
    num_layers: int = Field(default=4, ge=1, le=256, description="Text transformer layers.")
    num_heads: int = Field(default=2, ge=1, le=256, description="Attention heads (one key/value head).")
    head_dim: int = Field(default=32, ge=8, le=1024, description="Width of one attention head.")
    intermediate_size: int = Field(default=128, ge=16, le=65536, description="Width of the MLP.")
    vocab_size: int = Field(default=1024, ge=300, le=65536, description="BPE vocabulary trained on Anvil's corpus.")
    vision_layers: int = Field(default=1, ge=1, le=64, description="Layers of the (random) vision tower.")
    seed: Seed = Field(default=0, description="Seed of the random weights.")


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
    method: Method = Field(
        default="sft",
        description="How the round trains: `sft` on chat records, on preference pairs `dpo` (against the parent "
        "as reference) or `orpo` (no reference model), or `grpo` on prompt rows with a reward.",
    )
    preference: Preference | None = Field(
        default=None, description="Settings of a `dpo` or `orpo` round; defaults when omitted."
    )
    grpo: Grpo | None = Field(
        default=None, description="Settings of a `grpo` round: its reward (required), group size, KL weight."
    )
    lora: Lora | None = Field(default=None, description="LoRA adapter settings (needs a parent).")
    train: Train | None = Field(default=None, description="Optimiser settings (needs a parent).")
    distributed: Distributed | None = Field(
        default=None, description="Train this round data-parallel over processes and hosts (needs a parent)."
    )
    matrix: dict[str, list[float | int | str | bool]] | None = Field(
        default=None,
        description="Sweep this round: settings (`train.learning_rate`, `lora.rank`, ...) each with the values to try; "
        "every combination is a variant `NAME(lr=1e-3,rank=8)`, a round of its own, and NAME means the winner "
        "`select` picks.",
    )
    select: Select | None = Field(default=None, description="How a swept round's winner is chosen (needs a matrix).")
    quantize: Quantize | None = Field(
        default=None,
        description="Make this node by quantizing its parent's weights instead of training (needs a parent; "
        "no dataset, lora or train). It is evaluated, gated and served like any round, and cannot be trained on.",
    )

    @property
    def method_settings(self) -> Strict | None:
        """The round's method settings, from whichever of the methods' tables it gives."""
        return settings_in(self)

    @property
    def trains(self) -> bool:
        """A training round (parent and dataset), not a root, a quantized node or a sweep (its variants train)."""
        return self.parent is not None and self.quantize is None and self.matrix is None

    def _method_problem(self) -> str | None:
        """What the round's method (anvil/methods/) says against its settings, if anything."""
        method = METHODS[self.method]
        for table in TABLES:
            if getattr(self, table) is not None and table != method.TABLE:
                taking = " or ".join(repr(name) for name, m in METHODS.items() if table == m.TABLE)
                return f"{table} settings belong to method = {taking}, not {self.method!r}"
        settings = self.method_settings
        if method.TABLE_REQUIRED and settings is None and self.parent is not None:
            return f"a {self.method} round needs its `{method.TABLE}` table (expected its settings there)"
        chosen = settings.model_fields_set if settings else set()
        if problem := method.problem(settings):
            return problem
        if method.SETTINGS_FIELDS is not None and chosen - method.SETTINGS_FIELDS:
            extra, taken = ", ".join(sorted(chosen - method.SETTINGS_FIELDS)), ", ".join(sorted(method.SETTINGS_FIELDS))
            return f"{self.method.upper()} takes only {method.TABLE}.{taken} ({extra} are DPO's)"
        if not method.DISTRIBUTED and self.distributed is not None:
            return f"a {self.method} round trains in one process (distributed is for sft rounds, for now)"
        return None

    @model_validator(mode="after")
    def _root_or_round(self) -> Model:
        if self.quantize is not None:
            if self.parent is None or self.source is not None:
                raise ValueError("a quantized node needs a parent (the model whose weights it quantizes) and no source")
            others = [
                k
                for k in (
                    "dataset",
                    "lora",
                    "train",
                    *TABLES,
                    "distributed",
                    "method",
                    "revision",
                    "synthetic",
                    "matrix",
                    "select",
                )
                if k in self.model_fields_set
            ]
            if others:
                raise ValueError(
                    f"a quantized node is not trained: {', '.join(others)} belong to training rounds or root models"
                )
            return self
        if (self.source is None) == (self.parent is None):
            raise ValueError("give exactly one of source (a root model) or parent (a training round)")
        if self.synthetic is not None and not (self.source or "").startswith("synthetic:"):
            raise ValueError("synthetic sizes need a `synthetic:` source")
        if self.revision is not None and not (self.source or "").startswith("hf:"):
            raise ValueError("a revision needs an `hf:` source")
        if self.source and self.source.startswith("hf:") and (".." in self.source or "--" in self.source):
            raise ValueError(f"{self.source!r} is not a Hub repo id (expected hf:ORG/NAME, without '..' or '--')")
        if self.source is not None and (self.dataset or self.lora or self.train):
            raise ValueError("a root model (source) takes no dataset, lora or train; those belong to rounds")
        if self.parent is not None and self.dataset is None:
            raise ValueError("a training round (parent) needs a dataset (or `quantize`, to quantize its parent)")
        if self.parent is None and (self.method != Model.model_fields["method"].default or self.method_settings):
            raise ValueError("a root model (source) takes no method, preference or grpo; those belong to rounds")
        if problem := self._method_problem():
            raise ValueError(problem)
        if (self.matrix is None) != (self.select is None):
            raise ValueError("a sweep needs both matrix (what to try) and select (how to choose the winner)")
        if self.matrix is not None:
            if self.parent is None:
                raise ValueError("a matrix belongs to a training round (a parent), not to a root model")
            for key, values in self.matrix.items():
                if problem := setting_problem(self, key, values):
                    raise ValueError(f"matrix: {problem}")
            if len(combinations(self.matrix)) < 2:
                raise ValueError("matrix: it makes one variant (a sweep needs two or more; one is a setting)")
            if len(variants("x", self)) != len(combinations(self.matrix)):
                raise ValueError(
                    "matrix: two values name the same variant (they agree to 6 significant digits, as "
                    "variant names write them): choose values further apart"
                )
            if len(combinations(self.matrix)) > MAX_VARIANTS:
                raise ValueError(f"the matrix makes {len(combinations(self.matrix))} variants (at most {MAX_VARIANTS})")
        if self.distributed is not None:
            world, batch = self.distributed.world_size, (self.train or Train()).batch_size
            if self.parent is None:
                raise ValueError("distributed training belongs to rounds (a parent), not to root models")
            if batch % world:
                raise ValueError(
                    f"train.batch_size {batch} is not a multiple of the {world} distributed processes "
                    "(the batch is the global one, shared equally)"
                )
        return self


class Recipe(Strict):
    """An Anvil recipe: a lineage of models, the datasets they train on, serving, evaluation and gates."""

    project: ProjectInfo = Field(description="Project settings.")
    models: dict[str, Model] = Field(default={}, description="Model nodes: roots with a source, rounds with a parent.")
    datasets: dict[str, Dataset] = Field(default={}, description="Dataset mixes, by name.")
    serve: Serve | None = Field(default=None, description="The OpenAI-compatible server Anvil keeps running.")
    parity: Parity = Field(default_factory=Parity, description="Training against serving, checked after each fuse.")
    eval: Eval | None = Field(default=None, description="Evaluation: suites, judge, runs, benchmarks.")
    gates: list[Gate] = Field(default=[], description="Thresholds a model must meet to be promoted.")
    machine: Machine = Field(default_factory=Machine, description="Where it runs, for the memory estimates.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="A remote store shared between machines.")

    def lineage(self, model: str) -> list[str]:
        """`model`, its parent, the parent's parent, ... up to its root; stops before a name repeats (a
        cycle, reported by the checks) or is undefined."""
        chain = [model]
        while (parent := self.models[chain[-1]].parent) in self.models and parent not in chain:
            chain.append(parent)
        return chain

    def root_of(self, model: str) -> str:
        return self.lineage(model)[-1]
