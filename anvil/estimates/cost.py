"""What a stage kind's time and peak memory depend on. Each stage module declares its `Cost` beside its
`run` (the registry's `Stage.cost`); the estimates ask it and never a kind's name:

    seconds, first run = start_s (scaled by this machine's Python) + first_run(work, units, speed)
    seconds, after     = a recorded run's seconds per unit x units (estimates/arithmetic.py)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from anvil.backends.machine import Speed
from anvil.estimates.arithmetic import Shape


@dataclass(frozen=True)
class Work:
    """What a stage's cost is computed from: its settings as fingerprinted, the shape of the model it loads,
    a training round's tokens per sequence (None when unknown or not a round), the requests sent at once."""

    settings: Mapping[str, Any]
    shape: Shape | None
    sequence: float | None = None
    in_flight: int = 1


@dataclass(frozen=True)
class Cost:
    start_s: float = 0.5  # seconds of Python on the reference machine: imports, loading, writing the artifact
    unit: str = ""  # what `units` counts ("tokens", "answers", "bytes"); "": one go, not compared across runs
    units: Callable[[Work], float] = lambda work: 1.0
    first_run: Callable[[Work, float, Speed], float] = lambda work, units, speed: 0.0  # past start_s
    memory: Callable[[Work], float | None] = lambda work: None  # peak bytes; None: nothing to speak of
    weighs: str = ""  # the role of the need whose model it loads in full ("parent"), "" for its own model
    reads_rows: bool = False  # its time depends on its dataset's tokens per sequence (a training round)
    evaluation: bool = False  # its time is evaluating a model (the plan says what share of the total that is)


def weights(work: Work) -> float:
    """A stage that streams a model's weights: their bytes."""
    return work.shape.weight_bytes if work.shape else 0.0
