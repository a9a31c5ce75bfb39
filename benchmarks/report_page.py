"""The dashboard page with a 400-step loss curve per round: its size and render time, against baselines
measured in the same run:
  - the same page without its charts (what the charts cost);
  - the same two loss curves as one self-contained plotly page (JavaScript inlined, as a page that must
    open offline needs it), when plotly is installed.
Run by hand: python benchmarks/report_page.py [--steps 400] [--rounds 2] [--repeat 5]"""

from __future__ import annotations

import argparse
import math
import random
import time

from timing import timed  # benchmarks/timing.py, beside this script

from anvil.backends.machine import machine
from anvil.stages.report import charts, page


def dashboard(rounds: int, steps: int) -> dict:
    """Page data shaped as report/collect.py makes it: curves, mixes, scores, knowledge."""
    rng = random.Random(0)
    models = ["base"] + [f"v{i + 1}" for i in range(rounds)]
    out: dict = {
        "format": 2,
        "project": "bench",
        "live": None,
        "sources": {},
        "high_variance": [],
        "gates": [],
        "targets": [],
        "judge": [],
        "sweeps": [],
        "parity": [],
        "served": [],
        "shipped": [],
        "serving": None,
        "architecture": {
            "packages": {},
            "machine": machine(),
            "fuse": None,
            "judge": None,
            "eval_kv_cache": None,
            "serve_kv_cache": None,
        },
    }
    out["lineage"] = [
        {
            "model": m,
            "parent": models[i - 1] if i else None,
            "source": None if i else "synthetic:x",
            "dataset": "d" if i else None,
            "state": "built",
            "stage": None,
            "from": f"{m}.fuse",
        }
        for i, m in enumerate(models)
    ]
    out["composites"] = [
        {
            "model": m,
            "suite": "s",
            "state": "built",
            "runs": 3,
            "composite": rng.uniform(0, 5),
            "delta_vs_base": 0.3,
            "delta_vs_parent": 0.1,
            "p_vs_base": 0.2,
            "p_vs_parent": 0.5,
            "sig_vs_base": False,
            "sig_vs_parent": False,
            "uncalibrated": False,
            "from": f"{m}.eval",
        }
        for m in models
    ]
    out["categories"] = [
        {
            "model": m,
            "suite": "s",
            "from": f"{m}.eval",
            "rows": [
                {
                    "category": c,
                    "score": rng.uniform(0, 5),
                    "delta_vs_base": 0.1,
                    "p_vs_base": 0.3,
                    "delta_vs_parent": 0.1,
                    "p_vs_parent": 0.4,
                    "sig_vs_base": False,
                    "sig_vs_parent": False,
                }
                for c in "abcde"
            ],
        }
        for m in models
    ]
    out["knowledge"] = [
        {
            "model": m,
            "state": "built",
            "benchmark": b,
            "title": b,
            "filter": "f",
            "n": 500,
            "score": rng.uniform(0.5, 1),
            "stderr": 0.02,
            "groups": {},
            "lm_eval_task": None,
            "overlaps_training": None,
            "from": f"{m}.knowledge",
        }
        for m in models
        for b in ("gsm8k_cot", "mmlu_pro")
    ]
    out["rounds"] = []
    for m in models[1:]:
        train = [{"step": s, "loss": 3 * math.exp(-s / 80) + 0.3 + rng.uniform(-0.2, 0.2)} for s in range(1, steps + 1)]
        valid = [{"step": s, "loss": 3 * math.exp(-s / 80) + 0.4} for s in range(0, steps + 1, 50)]
        table = [{"step": p["step"], "train": None, "valid": p["loss"]} for p in valid]
        categories = [
            {"name": c, "rows": rng.randint(10, 90), "train": 9, "valid": 1, "description": "x", "addresses": [c]}
            for c in ("edge", "tool", "talk", "voice")
        ]
        out["rounds"].append(
            {
                "model": m,
                "parent": "base",
                "dataset": {
                    "name": "d",
                    "description": None,
                    "rows": 199,
                    "state": "built",
                    "categories": categories,
                    "from": "dataset.d",
                },
                "training": {"state": "built", "from": f"{m}.train"},
                "loss": {"train": train, "valid": valid, "table": table, "state": "built", "from": f"{m}.train"},
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    data = dashboard(args.rounds, args.steps)
    t0 = time.perf_counter()
    page.render(data)
    first = time.perf_counter() - t0
    full_s, full = timed(lambda: charts._DRAWN.clear() or page.render(data), args.repeat)
    again_s, _ = timed(lambda: page.render(data), args.repeat)
    loss_s, loss_svg = timed(lambda: charts.loss_curves(data["rounds"]), args.repeat)
    real_charts = page._charts
    page._charts = lambda d: {}  # the baseline: the same page, no chart drawn
    try:
        bare_s, bare = timed(lambda: page.render(data), args.repeat)
    finally:
        page._charts = real_charts
    assert isinstance(full, str) and isinstance(bare, str) and isinstance(loss_svg, str)
    print(f"{args.rounds} rounds x {args.steps} steps; median of {args.repeat}")
    print(
        f"page with charts:     {len(full) / 1e3:7.1f} kB  {1e3 * full_s:7.0f} ms  (first render, imports included: "
        f"{1e3 * first:.0f} ms)"
    )
    print(f"page without charts:  {len(bare) / 1e3:7.1f} kB  {1e3 * bare_s:7.0f} ms  (baseline)")
    print(f"live rewrite, charts unchanged (drawn once per content): {1e3 * again_s:.0f} ms")
    print(f"  the loss chart alone: {len(loss_svg) / 1e3:.1f} kB, {1e3 * loss_s:.0f} ms")
    print(f"  charts cost {len(full) / len(bare):.2f}x the bytes and {full_s / bare_s:.1f}x the time of the bare page")
    try:
        import plotly.graph_objects as go
        import plotly.io as pio
    except ImportError:
        print("plotly not installed: no comparison with a self-contained plotly page")
        return

    def plotly_page() -> str:
        fig = go.Figure()
        for r in data["rounds"]:
            for kind in ("train", "valid"):
                points = r["loss"][kind]
                fig.add_trace(
                    go.Scatter(
                        x=[p["step"] for p in points], y=[p["loss"] for p in points], name=f"{r['model']} {kind}"
                    )
                )
        return pio.to_html(fig, include_plotlyjs=True, full_html=True)

    plotly_s, plotly_html = timed(plotly_page, args.repeat)
    assert isinstance(plotly_html, str)
    print(
        f"plotly, the loss chart alone, self-contained: {len(plotly_html) / 1e3:7.1f} kB  {1e3 * plotly_s:5.0f} ms  "
        f"({len(plotly_html) / len(loss_svg):.0f}x the SVG chart's bytes)"
    )


if __name__ == "__main__":
    main()
