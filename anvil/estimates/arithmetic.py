"""Time and memory before anything runs (pure: graph + model shapes + history -> figures).

Time: a stage's work in units of its kind (tokens trained, tokens generated, bytes fused...) times
seconds per unit, taken from the runs recorded in the store: the same stage's last run first, then the
same kind of stage on this machine scaled by model size; with no history, estimates/first_run.py.

Memory: the peak of the process a stage starts, from the model's shape:

    train   text weights + LoRA (param, grad, Adam m and v in float32) + activations of the trained
            layers (every intermediate and the attention scores, or with gradient checkpointing what
            the checkpoints keep plus one layer recomputed) + the logits in float32 (forward, softmax,
            gradient)
    fuse    the largest projection in float32 a few times over (shards are streamed a tensor at a time)
    serve / transcripts / knowledge: weights + KV cache (K and V per layer, at the KV bits, for the
            longest request) per request in flight
The activation and logit coefficients are calibrated on measured peaks: `benchmarks/memory_estimate.py`."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GB = 1e9
# Fitted by benchmarks/memory_estimate.py to MLX's own peak (mx.get_peak_memory) of real training runs of
# synthetic Gemma 4 models from 0.4M to 70M parameters (bytes per token and trained layer, times the
# activation dtype's size): every intermediate of a layer, or with gradient checkpointing what the
# checkpoint keeps; attention scores in float32; logits, softmax and their gradient in float32.
ACTIVATIONS_PER_LAYER = (11.6, 8.0)  # x hidden, x intermediate (no checkpointing)
CHECKPOINT_PER_LAYER = 7.4  # x hidden (with checkpointing), plus one layer recomputed in full
LOGIT_COPIES = 3.0
OVERHEAD = 5.5e6  # allocator slack and small buffers
PROMPT_ALLOWANCE = 2048  # tokens of prompt assumed in front of a request's generated tokens


@dataclass(frozen=True)
class Shape:
    """What time and memory depend on in a model: its size and its text transformer's widths."""

    weight_bytes: float  # the whole checkpoint, vision and audio towers included
    parameters: float
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    text_weight_bytes: float = 0.0  # the language model alone (what training loads); 0: all of it

    @property
    def text_bytes(self) -> float:
        return self.text_weight_bytes or self.weight_bytes

    @property
    def bytes_per_weight(self) -> float:
        return self.weight_bytes / max(self.parameters, 1)


def shape_from_config(
    config: Mapping[str, Any], weight_bytes: float, parameters: float, text_bytes: float = 0.0
) -> Shape:
    """A Hugging Face / MLX config.json (text settings at the top or under `text_config`)."""
    text = config.get("text_config") or config
    hidden = int(text["hidden_size"])
    heads = int(text.get("num_attention_heads", max(hidden // 128, 1)))
    vocab = int(text.get("vocab_size", config.get("vocab_size", 0)))
    return Shape(
        weight_bytes,
        parameters,
        hidden,
        int(text.get("intermediate_size", 4 * hidden)),
        int(text["num_hidden_layers"]),
        heads,
        int(text.get("num_key_value_heads", heads)),
        int(text.get("head_dim", hidden // heads)),
        vocab,
        text_bytes,
    )


def shape_from_name(name: str) -> Shape | None:
    """A Hub model not downloaded yet: its size from the name (`...-31b-...`), 2 bytes a weight (4-bit
    when the name says so) and a transformer of the usual proportions for that size."""
    match = re.search(r"(\d+(?:\.\d+)?)b(?![a-z])", name.lower())
    if not match:
        return None
    parameters = float(match.group(1)) * 1e9
    bytes_per_weight = 0.5625 if re.search(r"4.?bit|q4", name.lower()) else 2.0
    layers = max(int(round(8 * parameters ** (1 / 6) / 10)), 8)  # 31B: 60 layers, 8B: 36, 1B: 25
    hidden = int(round(math.sqrt(parameters / (12 * layers)) / 128) * 128) or 128
    return Shape(
        parameters * bytes_per_weight,
        parameters,
        hidden,
        4 * hidden,
        layers,
        hidden // 128,
        max(hidden // 512, 1),
        128,
        262144,
    )


def parameter_count(n: float) -> str:
    """A parameter count as every surface writes it: 31.0B, 24.5M, 835k, 512."""
    if n >= 1e9:
        return f"{n / 1e9:.1f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    return f"{n / 1e3:.0f}k" if n >= 1e3 else f"{n:.0f}"


def lora_parameters(shape: Shape, rank: int, last_layers: int, keys: Sequence[str]) -> int:
    """Trainable parameters: rank x (in + out) for each adapted projection of each trained layer."""
    q, kv, h, i = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim, shape.hidden, shape.intermediate
    sizes = {
        "q_proj": h + q,
        "k_proj": h + kv,
        "v_proj": h + kv,
        "o_proj": q + h,
        "gate_proj": h + i,
        "up_proj": h + i,
        "down_proj": i + h,
    }
    per_layer = sum(sizes.get(key.rsplit(".", 1)[-1], 0) for key in keys)
    return rank * per_layer * min(last_layers, shape.layers)


def train_memory(shape: Shape, lora: Mapping[str, Any], train: Mapping[str, Any], keys: Sequence[str]) -> float:
    tokens = train["batch_size"] * train["max_seq_length"]
    trained = min(lora["last_layers"], shape.layers)
    act_bytes = max(shape.bytes_per_weight, 2.0)  # activations are never stored below 16 bits
    per_token_layer = ACTIVATIONS_PER_LAYER[0] * shape.hidden + ACTIVATIONS_PER_LAYER[1] * shape.intermediate
    scores = tokens * shape.heads * train["max_seq_length"] * 4
    one_layer = tokens * per_token_layer * act_bytes + scores
    if train["grad_checkpoint"]:
        activations = tokens * CHECKPOINT_PER_LAYER * shape.hidden * act_bytes * trained + one_layer
    else:
        activations = one_layer * trained
    logits = tokens * shape.vocab * 4 * LOGIT_COPIES
    adapter = lora_parameters(shape, lora["rank"], lora["last_layers"], keys) * 16
    return shape.text_bytes + adapter + activations + logits + OVERHEAD


def serving_memory(shape: Shape, max_tokens: int, kv_bits: int | None, in_flight: int = 1) -> float:
    context = max_tokens + PROMPT_ALLOWANCE
    kv = 2 * shape.layers * shape.kv_heads * shape.head_dim * context * ((kv_bits or 16) / 8) * in_flight
    return shape.weight_bytes + kv + OVERHEAD


def served_memory(settings: Mapping[str, Any], shape: Shape, in_flight: int) -> float:
    """A server's peak for a stage that generates through one: the longest answer its settings allow,
    `in_flight` at once, at its KV cache's bits."""
    kv = settings["kv_cache"]
    bits = kv["bits"] if kv["quantization"] != "none" else None
    tokens = settings.get("max_tokens") or max(
        (b["max_tokens"] or 256 for b in settings.get("benchmarks", [])), default=256
    )
    return serving_memory(shape, tokens, bits, in_flight)


def fuse_memory(shape: Shape) -> float:
    """The largest projection merged, in float32, three times over (weight, update, sum); every other
    tensor is copied file to file."""
    return 3 * shape.hidden * shape.intermediate * 4 + OVERHEAD


@dataclass(frozen=True)
class Run:
    """One finished stage as the store's history remembers it."""

    stage: str
    kind: str
    machine: str
    units: float
    parameters: float
    seconds: float
    estimate: float | None = None
    unit: str = ""  # what `units` counts (its kind's Cost.unit); a run counted in another unit is not compared


# How mlx-lm-lora batches (trainer.iterate_batches): rows sorted by length, neighbours batched, each batch
# padded to its longest row rounded up to a multiple of 32, plus one, and cut at max_seq_length.
PAD_TO = 32
BYTES_PER_TOKEN = 4.0  # of a JSONL row, roughly, for chat text in the usual tokenizers


def seconds(
    stage: str, kind: str, unit: str, units: float, parameters: float, machine: str, history: Sequence[Run]
) -> tuple[float | None, str]:
    """How long a stage should take from the store's history, and on what the figure rests (None: no run
    of its kind on this machine)."""
    if units <= 0:
        return 0.0, "no work"
    comparable = [r for r in history if r.machine == machine and r.units > 0 and r.unit == unit]
    mine = [r for r in comparable if r.stage == stage]
    if mine:
        last = mine[-1]
        return last.seconds / last.units * units * _size_ratio(parameters, last.parameters), "last run"
    alike = [r for r in comparable if r.kind == kind]
    if alike:
        nearest = min(alike[-20:], key=lambda r: abs(math.log(max(r.parameters, 1) / max(parameters, 1))))
        return nearest.seconds / nearest.units * units * _size_ratio(parameters, nearest.parameters), "history"
    return None, ""  # a first run: estimates/first_run.py, from the machine's measured speed


def _size_ratio(parameters: float, measured: float) -> float:
    """Compute grows with size, but not below the fixed cost that dominates tiny models."""
    return max(parameters / max(measured, 1), 1.0) if parameters > measured * 1.5 else 1.0


def sequence_tokens(sources: Sequence[tuple[Sequence[int], int]], max_seq_length: int) -> float:
    """The tokens a training sequence costs on average, batched as mlx-lm-lora batches (PAD_TO).
    `sources`: each source file's row lengths in bytes, and how many of its rows the mix takes."""
    total = rows = 0.0
    for lengths, taken in sources:
        if not lengths or taken <= 0:
            continue
        padded = sum(min(1 + PAD_TO * math.ceil(n / BYTES_PER_TOKEN / PAD_TO), max_seq_length) for n in lengths)
        total += padded * taken / len(lengths)
        rows += taken
    return total / rows if rows else float(max_seq_length)
