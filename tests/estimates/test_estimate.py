"""Time and memory estimates: the pure arithmetic, the history it learns from, and an apply refused for
memory before anything runs."""

from __future__ import annotations

import json

import pytest

from anvil.estimates import for_project as estimating
from anvil.estimates import sizing
from anvil.estimates.arithmetic import (
    GB,
    Run,
    Shape,
    lora_parameters,
    seconds,
    sequence_tokens,
    shape_from_name,
    train_memory,
)
from tests.commands.test_cli import anvil
from tests.conftest import chat_row

KEYS = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
]
SEED = Shape(69e9, 34.5e9, 5376, 21504, 60, 32, 16, 256, 262144, text_weight_bytes=30.697e9 * 2)
LORA = {"rank": 16, "last_layers": 12}
TRAIN = {"batch_size": 1, "max_seq_length": 1024, "grad_checkpoint": True}


def test_the_last_run_of_the_same_stage_predicts_a_rerun():
    history = [Run("v1.train", "train", "m", units=400, parameters=1e6, seconds=80.0, unit="tokens")]
    assert seconds("v1.train", "train", "tokens", 800, 1e6, "m", history) == (160.0, "last run")
    assert seconds("v1.train", "train", "tokens", 800, 1e6, "other machine", history) == (None, ""), "a first run here"
    alike = seconds("v2.train", "train", "tokens", 400, 4e6, "m", history)  # another round, a 4x bigger model
    assert alike == (320.0, "history")


def test_a_run_counted_in_another_unit_is_not_compared():
    sequences = [Run("v1.train", "train", "m", units=400, parameters=1e6, seconds=80.0)]  # before tokens
    assert seconds("v1.train", "train", "tokens", 800, 1e6, "m", sequences) == (None, "")


def test_a_sequence_costs_its_rows_padded_as_mlx_lm_lora_pads_them_and_cut_at_max_seq_length():
    assert sequence_tokens([([40, 40], 2)], 2048) == 33  # 10 tokens: padded to 32, plus one
    assert sequence_tokens([([40_000], 1)], 512) == 512
    # the mix's counts weigh each file: 3 short rows for each long one
    assert sequence_tokens([([40], 3), ([400, 400], 1)], 2048) == (3 * 33 + 129) / 4
    assert sequence_tokens([([], 0)], 320) == 320  # nothing to go on: the longest a sequence can be


def first(kind: str, settings: dict, shape: Shape | None, units: float, speed) -> float:
    """A first run of a stage of `kind`, as its Cost (in its stage module) says."""
    from anvil.estimates import first_run
    from anvil.estimates.cost import Work
    from anvil.stages.registry import BY_KIND

    return first_run.seconds(BY_KIND[kind].cost, Work(settings, shape), units, speed)


def test_a_first_run_is_estimated_from_the_machine_speed_and_the_work():
    from anvil.backends.machine import Speed
    from anvil.estimates import first_run
    from anvil.stages.registry import BY_KIND

    here = Speed(python_s=first_run.REFERENCE_PYTHON_S, op_s=5e-4, flops=2e10, bandwidth=5e9)
    train = {
        "train": {"steps": 100, "batch_size": 1, "max_seq_length": 1024, "val_interval": 50},
        "lora": {"last_layers": 12},
    }
    tiny, seed = Shape(2e6, 1e6, 128, 256, 4, 2, 1, 64, 1024), SEED
    small, big = first("train", train, tiny, 0, here), first("train", train, seed, 0, here)
    assert BY_KIND["train"].cost.start_s < small < big, "a fixed start, and more work for a bigger model"
    slow = first("train", train, seed, 0, Speed(here.python_s, here.op_s, here.flops / 2, here.bandwidth))
    assert slow == pytest.approx(2 * (big - BY_KIND["train"].cost.start_s), rel=0.02), "bound by its arithmetic"
    twice = {**train, "train": {**train["train"], "steps": 200}}
    assert first("train", twice, tiny, 0, here) > 1.9 * (small - BY_KIND["train"].cost.start_s)
    slower_python = Speed(2 * here.python_s, here.op_s, here.flops, here.bandwidth)
    assert first("gate", {}, None, 1, slower_python) == 2 * first("gate", {}, None, 1, here)
    for kind in ("dataset", "source", "fuse", "eval", "gate", "report", "serve"):
        assert first(kind, {}, tiny, 1, here) > 0, "every stage that runs has an estimate"


def test_the_probe_measures_this_machine():
    from anvil.backends.machine import measure

    speed = measure()
    assert all(0 < v < float("inf") for v in (speed.python_s, speed.op_s, speed.flops, speed.bandwidth))


def test_the_seed_shape_gives_the_seed_trainable_parameters_and_its_memory_within_20_percent():
    assert abs(lora_parameters(SEED, 16, 12, KEYS) - 24.5e6) / 24.5e6 < 0.05  # the seed: 24.5M
    estimate = train_memory(SEED, LORA, TRAIN, KEYS)
    assert abs(estimate - 81e9) / 81e9 < 0.2, estimate / GB  # the seed: ~81 GB measured on the M3 Ultra


def test_memory_grows_with_what_it_should_and_checkpointing_saves_it():
    base = train_memory(SEED, LORA, TRAIN, KEYS)
    assert train_memory(SEED, LORA, {**TRAIN, "grad_checkpoint": False}, KEYS) > base
    assert train_memory(SEED, LORA, {**TRAIN, "batch_size": 4}, KEYS) > base
    assert train_memory(SEED, {"rank": 16, "last_layers": 60}, TRAIN, KEYS) > base


def test_a_model_named_by_size_gets_a_shape_of_that_size():
    shape = shape_from_name("google/gemma-4-31b-it")
    assert shape is not None and shape.parameters == 31e9 and shape.weight_bytes == 62e9
    assert shape_from_name("mlx-community/Llama-3-8B-4bit").bytes_per_weight < 1
    assert shape_from_name("org/no-size-here") is None


def test_an_apply_that_cannot_fit_is_refused_before_anything_runs(project_dir):
    recipe = project_dir / "anvil.toml"
    recipe.write_text(recipe.read_text() + '\n[machine]\nname = "a toaster"\nmemory_gb = 0.001\n')
    plan = anvil("plan")
    assert plan.returncode == 0
    line = next(line for line in plan.stderr.splitlines() if line.startswith("! v1.train needs about "))
    assert line.endswith(" MB at its peak; a toaster has 1 MB: apply will refuse")
    refused = anvil("apply")
    assert refused.returncode == 1 and "not enough memory, nothing was run" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not any(row["built"] for row in json.loads(anvil("status", "--json").stdout))


def test_an_apply_records_its_runs_and_the_next_plan_estimates_from_them(data_dir):
    first = json.loads(anvil("plan", "--json").stdout)
    assert first["estimated_seconds"] > 0 and {a["estimate"]["basis"] for a in first["actions"]} == {"machine probe"}
    applied = anvil("apply")
    assert applied.returncode == 0 and "Took " in applied.stdout
    runs = [json.loads(line) for line in (data_dir / ".anvil" / "history.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in runs} == {"dataset.domain", "dataset.behavioral"}
    assert all(r["seconds"] >= 0 and r["estimate"] > 0 for r in runs)
    again = json.loads(anvil("plan", "--replace", "dataset.domain", "--json").stdout)
    [action] = [a for a in again["actions"] if a["stage"] == "dataset.domain"]
    assert action["estimate"]["basis"] == "last run" and again["estimated_seconds"] is not None
    anvil("apply", "--replace", "dataset.domain")
    last = json.loads((data_dir / ".anvil" / "history.jsonl").read_text().splitlines()[-1])
    assert last["stage"] == "dataset.domain" and last["estimate"] is not None, "the estimate is kept beside the time"


def test_a_round_on_longer_rows_is_estimated_from_the_tokens_it_trains(project_dir):
    """v2 mixes rows 20x longer than v1's: from v1's recorded run, its estimate grows with its tokens."""
    for name in ("a", "b"):
        rows = "".join(chat_row(f"x{i}" * 200, f"y{i}" * 200) + "\n" for i in range(8))
        (project_dir / "data" / f"{name}.jsonl").write_text(rows)
    first = {a["stage"]: a["estimate"] for a in json.loads(anvil("plan", "--json").stdout)["actions"]}
    assert first["v1.train"]["basis"] == "machine probe"
    run = Run("v1.train", "train", sizing.machine(), units=1000, parameters=1e12, seconds=10.0, unit="tokens")
    history = project_dir / ".anvil" / "history.jsonl"
    history.parent.mkdir(exist_ok=True)
    history.write_text(json.dumps(run.__dict__) + "\n")
    plan = {a["stage"]: a["estimate"] for a in json.loads(anvil("plan", "--json").stdout)["actions"]}
    assert plan["v1.train"]["basis"] == "last run" and plan["v2.train"]["basis"] == "history"

    def lengths(name):
        return [len(line) + 1 for line in (project_dir / "data" / name).read_text().splitlines()]

    short = sequence_tokens([(lengths("domain.jsonl"), 10)], 2048)
    long = sequence_tokens([(lengths("a.jsonl"), 8)], 2048)
    assert long > 5 * short
    assert plan["v2.train"]["seconds"] / plan["v1.train"]["seconds"] == pytest.approx(long / short, rel=0.01)


def test_a_big_training_file_is_sampled_for_its_rows_length(tmp_path, monkeypatch):
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(b"x" * 99 + b"\n\n" + b"y" * 99 + b"\n")
    assert estimating.row_lengths(rows) == ([100, 100], 2)  # blank lines are not rows
    rows.write_bytes((b"z" * 99 + b"\n") * 1000)
    monkeypatch.setattr(estimating, "SAMPLE_BYTES", 250)
    assert estimating.row_lengths(rows) == ([100, 100], 1000)  # two whole rows read, the count predicted


def test_a_history_line_of_the_wrong_types_is_skipped_like_garbage(tmp_path):
    from anvil.estimates import history

    good = {"stage": "v1.train", "kind": "train", "machine": "m", "units": 4, "parameters": 1, "seconds": 2.0}
    lines = [
        good,
        {**good, "units": "x"},
        {**good, "seconds": None},
        {**good, "stage": ["a"]},
        [1, 2],
        "text",
        {**good, "estimate": "soon"},
        {**good, "seconds": -1},
    ]
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"torn": ')
    assert [r.units for r in history.read(path)] == [4]
