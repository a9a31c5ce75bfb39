"""The loss log a training child keeps across restarts (backends/lora_worker.Recorder): a resumed round
records the curve an uninterrupted one does, with no point twice."""

from __future__ import annotations

import json

from anvil.backends.lora_worker import Recorder
from anvil.recipe.models import Train


def steps(log) -> list[tuple[str, int]]:
    return [(e["kind"], e["step"]) for e in map(json.loads, log.read_text().splitlines())]


def report(recorder: Recorder, iteration: int) -> None:
    recorder.on_train_loss_report(
        {
            "iteration": iteration,
            "train_loss": 1.0,
            "tokens_per_second": 1.0,
            "iterations_per_second": 1.0,
            "peak_memory": 0.1,
        }
    )


def test_a_round_killed_before_its_first_checkpoint_logs_step_zero_once(tmp_path):
    log, settings = tmp_path / "log.jsonl", Train(steps=4, val_interval=2, checkpoint_interval=2)
    Recorder(log, 0, settings, lambda: 2.0, lambda step: None)  # killed after the step-0 validation
    with open(log, "a") as torn:
        torn.write('{"kind": "train", "st')  # ... in the middle of writing a line
    again = Recorder(log, 0, settings, lambda: 2.0, lambda step: None)
    for i in range(1, 5):
        report(again, i)
    assert steps(log) == [
        ("valid", 0),
        ("train", 1),
        ("train", 2),
        ("valid", 2),
        ("train", 3),
        ("train", 4),
        ("valid", 4),
    ]


def test_a_resumed_round_keeps_what_came_before_its_checkpoint(tmp_path):
    log, settings = tmp_path / "log.jsonl", Train(steps=4, val_interval=2, checkpoint_interval=2)
    first = Recorder(log, 0, settings, lambda: 2.0, lambda step: None)
    for i in range(1, 4):
        report(first, i)  # checkpoint at 2, killed after 3
    resumed = Recorder(log, 2, settings, lambda: 2.0, lambda step: None)
    for i in range(1, 3):
        report(resumed, i)
    assert steps(log) == [
        ("valid", 0),
        ("train", 1),
        ("train", 2),
        ("valid", 2),
        ("train", 3),
        ("train", 4),
        ("valid", 4),
    ]
