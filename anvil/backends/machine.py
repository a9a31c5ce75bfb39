"""The machine and the packages that built and show the lineage (the dashboard's architecture section):
what MLX computes on here is asked of MLX itself. And what this machine does in a second, measured in
well under one, for first-run estimates (estimates/first_run.py): how fast it runs Python (the fixed
costs of starting a stage: imports, loading, a server coming up), how long one small MLX operation takes
(what bounds a tiny model), and MLX's matrix throughput and memory bandwidth on its default device (what
bounds a large one); measured once per process."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from functools import cache
from importlib import metadata

PACKAGES = ("anvil", "mlx", "mlx-lm", "mlx-lm-lora", "mlx-vlm", "transformers")


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine() -> dict[str, object]:
    import psutil

    return {
        "system": platform.system(),
        "arch": platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "accelerator": _accelerator(),
    }


def _accelerator() -> str:
    """What MLX computes on here: Apple silicon's GPU (Metal), CUDA, or the CPU."""
    try:
        import mlx.core as mx
    except ImportError:
        return "unknown"
    if mx.metal.is_available():
        return "Metal GPU"
    cuda = getattr(mx, "cuda", None)
    if cuda is not None and cuda.is_available():
        return "CUDA GPU"
    return "CPU"


def describe() -> dict[str, object]:
    """The packages and the machine, as the dashboard shows them."""
    return {"packages": versions(), "machine": machine()}


@dataclass(frozen=True)
class Speed:
    python_s: float  # seconds for PYTHON_LOOP iterations of a plain Python loop
    op_s: float  # seconds per small MLX operation evaluated on its own (dispatch latency)
    flops: float  # MLX matrix-multiply throughput, float32, operations per second
    bandwidth: float  # bytes per second MLX reads in a reduction over a large array


PYTHON_LOOP = 300_000
SMALL, CHAIN = 64, 200  # a chain of small matrix products, each evaluated: latency, not arithmetic
LARGE, REPEATS = 512, 4  # a large product, repeated: arithmetic
STREAM = 1 << 24  # float32 values summed (64 MB): bandwidth


def _best(run, tries: int = 3) -> float:
    """The fastest of a few timed runs: the machine's speed, not its neighbours' noise."""
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return max(min(times), 1e-9)


@cache
def measure() -> Speed:
    import mlx.core as mx

    def python_loop() -> None:
        total = 0
        for i in range(PYTHON_LOOP):
            total += i & 7

    small = mx.random.normal((SMALL, SMALL)) * 0.01
    large = mx.random.normal((LARGE, LARGE))
    stream = mx.ones((STREAM,))
    mx.eval(small, large, stream)

    def chain() -> None:
        x = small
        for _ in range(CHAIN):
            x = x @ small
            mx.eval(x)

    def products() -> None:
        mx.eval(*[large @ large for _ in range(REPEATS)])

    def reduce() -> None:
        mx.eval(mx.sum(stream))

    chain()  # warm: kernels compiled, buffers allocated
    return Speed(
        python_s=_best(python_loop),
        op_s=_best(chain) / CHAIN,
        flops=REPEATS * 2 * LARGE**3 / _best(products),
        bandwidth=STREAM * 4 / _best(reduce),
    )
