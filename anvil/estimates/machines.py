"""The machines people fine-tune on, as the estimates see them: what a stage's time depends on (memory
bandwidth, matrix throughput, the latency of one operation) for a machine that is not this one, so that
`plan` on a laptop prints the time the recipe takes on the Mac it will run on (`[machine] profile`).

Figures, per chip in its largest GPU configuration: memory bandwidth as Apple publishes it (each chip's
announcement); GPU FP32 throughput as Apple publishes it for M1 and M2 (10.4, 21, 13.6 and 27.2 TFLOPS),
and for M3 and M4, which Apple gives no TFLOPS for, the same arithmetic Apple's figures follow: GPU cores
x 128 ALUs x 2 operations (a fused multiply-add) x the GPU clock.

How much of that peak MLX reaches is the one figure fitted rather than published: `MATMUL_SHARE`, from
the seed's own measured round (Gemma 4 31B, v2: 400 steps at ~1.5 s per step on an M3 Ultra; a LoRA
round's products are skinny, a few hundred tokens against 5,376-wide weights, far from a square
benchmark's share). tests/estimates/test_machines.py holds the model to that round within 30%, and to its
peak memory (~81 GB), which nothing here was fitted to. One kernel dispatch costs about `DISPATCH_S`."""

from __future__ import annotations

from dataclasses import dataclass

from anvil.backends.machine import Speed
from anvil.estimates.first_run import REFERENCE_PYTHON_S

MATMUL_SHARE = 0.4  # of the GPU's peak a LoRA round's bf16 matrix products reach in MLX (fitted: see above)
DISPATCH_S = 2e-5  # seconds per MLX operation evaluated on its own on the GPU (Metal dispatch)
PYTHON_SPEEDUP = 1.6  # Apple's performance cores run plain Python this much faster than the reference


@dataclass(frozen=True)
class Profile:
    name: str  # what `[machine] profile` says
    chip: str
    gpu_cores: int
    bandwidth_gbs: float  # unified memory bandwidth, GB/s
    tflops: float  # GPU FP32 peak
    memory_gb: tuple[int, ...]  # the memory it is sold with (the largest is the default)
    source: str

    def speed(self) -> Speed:
        return Speed(
            python_s=REFERENCE_PYTHON_S / PYTHON_SPEEDUP,
            op_s=DISPATCH_S,
            flops=self.tflops * 1e12 * MATMUL_SHARE,
            bandwidth=self.bandwidth_gbs * 1e9,
        )


APPLE = "Apple's announcement of the chip"
PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("m1-max", "M1 Max", 32, 400, 10.4, (32, 64), f"{APPLE} (Oct 2021): 400 GB/s, 10.4 TFLOPS"),
        Profile("m1-ultra", "M1 Ultra", 64, 800, 21.0, (64, 128), f"{APPLE} (Mar 2022): 800 GB/s, 21 TFLOPS"),
        Profile("m2-max", "M2 Max", 38, 400, 13.6, (32, 64, 96), f"{APPLE} (Jan 2023): 400 GB/s, 13.6 TFLOPS"),
        Profile("m2-ultra", "M2 Ultra", 76, 800, 27.2, (64, 128, 192), f"{APPLE} (Jun 2023): 800 GB/s, 27.2 TFLOPS"),
        Profile(
            "m3-max",
            "M3 Max",
            40,
            400,
            16.4,
            (36, 48, 64, 96, 128),
            f"{APPLE} (Oct 2023): 400 GB/s; 40 x 128 x 2 x 1.6 GHz",
        ),
        Profile(
            "m3-ultra",
            "M3 Ultra",
            80,
            819,
            32.8,
            (96, 256, 512),
            f"{APPLE} (Mar 2025): 819 GB/s; 80 x 128 x 2 x 1.6 GHz",
        ),
        Profile(
            "m4-max",
            "M4 Max",
            40,
            546,
            18.4,
            (36, 48, 64, 128),
            f"{APPLE} (Oct 2024): 546 GB/s; 40 x 128 x 2 x 1.8 GHz",
        ),
    )
}
