"""The page's charts as inline SVG, drawn by matplotlib: no script, no font or file from the network,
text kept as text, and a 400-step curve is one path of a few kilobytes. Output is deterministic (fixed
ids, no date), so the same data gives the same page byte for byte."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any

COLORS = ("#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2", "#65a30d", "#db2777")
WIDTH = 7.2  # inches: the page's column at 100 dpi


_DRAWN: dict[str, str | None] = {}


def drawn(draw: Callable[..., str | None], *args: Any) -> str | None:
    """A chart drawn once per content: a live page is written after every stage, its charts seldom change."""
    key = json.dumps([draw.__name__, args], sort_keys=True)
    if key not in _DRAWN:
        if len(_DRAWN) > 64:
            _DRAWN.clear()
        _DRAWN[key] = draw(*args)
    return _DRAWN[key]


def _figure(height: float):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.fonttype": "none",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )
    return plt.subplots(figsize=(WIDTH, height))


def _svg(fig, name: str) -> str:
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = name  # ids unique per chart and stable between renders
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]  # inline: no XML prolog or doctype
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="chart" role="img"', svg, count=1)
    return svg.replace(' id="', f' id="{name}-').replace("url(#", f"url(#{name}-").replace('href="#', f'href="#{name}-')


def loss_curves(rounds: list[dict[str, Any]]) -> str | None:
    """Train (line) and validation (dashed, dots) loss per step, one colour per round, on one chart."""
    curves = [r for r in rounds if r["loss"]["train"] or r["loss"]["valid"]]
    if not curves:
        return None
    fig, ax = _figure(3.0)
    for i, r in enumerate(curves):
        color = COLORS[i % len(COLORS)]
        train, valid = r["loss"]["train"], r["loss"]["valid"]
        if train:
            ax.plot(
                [p["step"] for p in train], [p["loss"] for p in train], color=color, lw=1.2, label=f"{r['model']} train"
            )
        if valid:
            ax.plot(
                [p["step"] for p in valid],
                [p["loss"] for p in valid],
                color=color,
                lw=1.2,
                ls="--",
                marker="o",
                ms=3,
                label=f"{r['model']} valid",
            )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(frameon=False, ncol=2)
    return _svg(fig, "loss")


def bars(
    name: str, labels: list[str], series: dict[str, list[float | None]], unit: str = "", horizontal: bool = False
) -> str | None:
    """Grouped bars: one group per label, one bar per series (a model), value written on each bar."""
    if not labels or not series:
        return None
    fig, ax = _figure(0.5 + 0.25 * len(labels) * len(series) if horizontal else 2.6)
    width = 0.8 / len(series)
    for i, (title, values) in enumerate(series.items()):
        positions = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
        heights = [v or 0.0 for v in values]
        draw = ax.barh if horizontal else ax.bar
        drawn = draw(positions, heights, width * 0.9, color=COLORS[i % len(COLORS)], label=title)
        ax.bar_label(drawn, labels=[_label(v, unit) for v in values], fontsize=8, padding=2)
    if horizontal:
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
    else:
        ax.set_xticks(range(len(labels)), labels)
        ax.grid(axis="x", visible=False)
    if unit == "%":
        from matplotlib.ticker import PercentFormatter

        ax.set_ylim(0, 1.1)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    elif unit == "score":
        ax.set_ylim(0, 5.5)
    if len(series) > 1:
        ax.legend(frameon=False, ncol=len(series), loc="upper left", bbox_to_anchor=(0, 1.15))
    ax.margins(x=0.12 if horizontal else 0.05, y=0.05 if horizontal else 0.15)
    return _svg(fig, name)


def _label(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}%" if unit == "%" else (f"{value:.0f}" if unit == "n" else f"{value:.2f}")
