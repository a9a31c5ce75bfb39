"""How long a stage takes when the store has never run one like it (pure: settings + model shape + the
machine's Speed -> seconds). Each kind's Cost (declared in its stage module) is a fixed start plus some
of these terms, per step, per token and per byte:

    train        start + steps x (operations per step x latency + tokens x training FLOPs / throughput)
                 + validation passes (forward only) + saved checkpoints
    transcripts, knowledge, serving
                 a server's start + per request (prefill) + per generated token (decoding: each layer's
                 operations x latency, and the weights read once, at the memory bandwidth)
    fuse         start + the weights streamed through + the parity check (both runtimes load the model)
    others       a fixed cost, and per answer for the judge

Fixed costs are seconds of Python on the reference machine, scaled by this machine's Python speed; the
other terms scale with its MLX latency, throughput and bandwidth (backends/machine.py). The constants
were fitted to a fresh apply of the default recipe on the reference machine (2 x86 cores, MLX on the
CPU); `benchmarks/first_estimates.py` measures how close a fresh apply comes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from anvil.backends.machine import Speed
from anvil.estimates.arithmetic import Shape
from anvil.estimates.cost import Cost, Work

REFERENCE_PYTHON_S = 0.0075  # Speed.python_s on the reference machine
STEP_LATENCIES = 20.0  # a training step's fixed work, in small-operation latencies (Speed.op_s)
TRAIN_FLOP_FACTOR = 1.16  # a model's small matrices run below the probe's throughput; backward recomputes
TOKEN_LATENCIES = (0.1, 0.1)  # a decoded token: fixed, and per layer, in op latencies (MLX evaluates async)
PREFILL_LATENCIES = 1.15  # a prompt token prefilled, in op latencies (tokenizing, templating, prefill)
PROMPT_TOKENS = {"gsm8k_cot": 900, "mmlu_pro": 1500, "qa": 40}  # a knowledge item's prompt, roughly
ZERO_SHOT_PROMPT = 250  # an item without exemplars
REQUEST_S = 0.02  # per chat request: HTTP and the chat template
SAVE_S = 0.2  # per adapter checkpoint written
JUDGE_S = {"rules": 0.001, "command": 5.0, "openai": 3.0}  # per answer judged


def seconds(cost: Cost, work: Work, units: float, speed: Speed) -> float:
    """A first run's time: the kind's fixed start on this machine's Python, then its work (`units` as its
    Cost counts them)."""
    return cost.start_s * speed.python_s / REFERENCE_PYTHON_S + cost.first_run(work, units, speed)


def streamed(work: Work, units: float, speed: Speed) -> float:
    """Weights read, converted, written, and read back to check."""
    return units / speed.bandwidth * 4


def judged(work: Work, units: float, speed: Speed) -> float:
    """Answers judged, `in_flight` at once."""
    judge = (work.settings.get("judge") or {}).get("kind", "rules")
    return units * JUDGE_S.get(judge, 3.0) / max(work.in_flight, 1)


def generated(work: Work, units: float, speed: Speed) -> float:
    """Generation through a server: `units` tokens decoded at most, the settings' prompts prefilled."""
    return generation(work.settings, work.shape, units, speed, work.in_flight)


def training(
    settings: Mapping[str, Any],
    shape: Shape | None,
    speed: Speed,
    sequence: float | None,
    sequences: int = 1,
    generated: int = 0,
    reference: bool = False,
) -> float:
    """A round's time: each step's forward and backward over `sequences` per row (and a frozen reference's
    forward), after decoding `generated` tokens for all its rows at once (a method that samples answers)."""
    train, lora = settings["train"], settings["lora"]
    parameters, layers = _parameters(shape)
    length = (sequence or train["max_seq_length"]) + generated
    tokens = train["batch_size"] * sequences * length
    trained = min(lora["last_layers"], layers) / layers
    # per token: 2 per weight, and attention's 4 per key and width in each layer; backward twice that
    # through the trained layers only
    attention = 4 * length * (shape.heads * shape.head_dim if shape else 128) * layers
    forward = tokens * (2 * parameters + attention)
    backward = 2 * trained + (trained if train.get("grad_checkpoint") else 0)  # checkpoints: forward again
    step = STEP_LATENCIES * speed.op_s + TRAIN_FLOP_FACTOR * forward * (1 + backward + reference) / speed.flops
    step += generated * decode_token(shape, speed)
    validate = STEP_LATENCIES / 3 * speed.op_s + TRAIN_FLOP_FACTOR * forward / speed.flops
    validations = train["steps"] // (train.get("val_interval") or train["steps"]) + 1
    saves = train["steps"] // (train.get("checkpoint_interval") or train["steps"]) + 1
    return train["steps"] * step + validations * train.get("val_batches", 8) * validate + saves * SAVE_S


def decode_token(shape: Shape | None, speed: Speed) -> float:
    """One decoding step: its fixed and per-layer latencies, and the weights read once."""
    parameters, layers = _parameters(shape)
    weight_bytes = shape.weight_bytes if shape else 2 * parameters
    fixed, per_layer = TOKEN_LATENCIES
    return (fixed + per_layer * layers) * speed.op_s + weight_bytes / speed.bandwidth


def generation(settings: Mapping[str, Any], shape: Shape | None, units: float, speed: Speed, in_flight: int) -> float:
    parameters, _ = _parameters(shape)
    per_token = decode_token(shape, speed)
    prompt = PREFILL_LATENCIES * speed.op_s + 2 * parameters / speed.flops  # per prompt token
    return (units * per_token + prompt_tokens(settings) * prompt) / max(in_flight, 1) + requests(settings) * REQUEST_S


def _parameters(shape: Shape | None) -> tuple[float, int]:
    return (shape.parameters, shape.layers) if shape else (1e6, 4)


def requests(settings: Mapping[str, Any]) -> float:
    if "benchmarks" in settings:
        return sum(b["n"] for b in settings["benchmarks"])
    return sum(len(s) for s in settings.get("suites", {}).values()) * settings.get("runs", 1)


def prompt_tokens(settings: Mapping[str, Any]) -> float:
    """Prompt tokens prefilled: a knowledge benchmark's few-shot prompts (none for MMLU-Pro without
    exemplars); a suite's prompts are short."""
    if "benchmarks" not in settings:
        return 0.0
    total = 0.0
    for b in settings["benchmarks"]:
        zero_shot = b["benchmark"] == "mmlu_pro" and b.get("data") and not b.get("fewshot")
        total += b["n"] * (ZERO_SHOT_PROMPT if zero_shot else PROMPT_TOKENS.get(b["benchmark"], 1000))
    return total
