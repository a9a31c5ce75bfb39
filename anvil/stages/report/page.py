"""The dashboard's HTML: the data of report/collect.py through one Jinja template (autoescaped) with the
charts inlined. Every figure is an element with `data-metric` (what it is, for scripts and tests) and a
tooltip naming the stage and fingerprint it was read from."""

from __future__ import annotations

import itertools
import math
from functools import cache
from typing import Any

from markupsafe import Markup, escape

from anvil.estimates.arithmetic import parameter_count
from anvil.stages.kinds import KINDS
from anvil.stages.report.config import TEMPLATE, partials, template_text

REFRESH_S = 5  # how often a page open in a browser reloads itself while an apply runs


def render(data: dict[str, Any]) -> str:
    sources = data["sources"]

    def figure(value: Any, metric: str, source: str | None, style: str = ".2f") -> Markup:
        """A number as the page shows it, tagged with what it is and where it comes from."""
        found = sources.get(source or "")
        origin = f"{source} · fingerprint {found['fingerprint'][:12]}" if found else (source or "")
        shown = figure_text(value, style)
        return Markup('<span class="n" data-metric="{}" title="{}">{}</span>').format(metric, origin, shown)

    def source_link(sid: str) -> Markup:
        found = sources.get(sid)
        if found is None:
            return Markup('<span class="src">{}</span>').format(sid)
        return Markup('<a class="src" href="#src-{}" title="fingerprint {}">{} {}</a>').format(
            sid, found["fingerprint"], sid, found["fingerprint"][:8]
        )

    # Sections are numbered as they appear: one training-data section per round, so no fixed numbers.
    return _template().render(
        data=data,
        charts=_charts(data),
        refresh_s=REFRESH_S,
        figure=figure,
        source=source_link,
        section_number=itertools.count(1).__next__,
        partials=list(partials()),
    )


@cache
def _template():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.DictLoader({TEMPLATE: template_text(), **partials()}),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(fmt=figure_text, state_badge=_badge, signed=_signed)
    return env.get_template(TEMPLATE)


def _charts(data: dict[str, Any]) -> dict[str, str | None]:
    """Every kind's charts (SVG by name), drawn from the page's data, for its partial to inline."""
    return {name: svg for stage in KINDS if stage.charts for name, svg in stage.charts(data).items()}


def figure_text(value: Any, style: str = ".2f") -> str:
    """.2f: 4.15; +2f: +0.31; pct: 96.0%; pp: -0.2pp; p: 0.87 / <0.01; int: 1,234; params: 24.5M; s: 1.5s."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if style == "p":
        return "<0.01" if value < 0.01 else f"{value:.2f}"
    if style == "pct":
        return f"{100 * value:.1f}%"
    if style == "pp":
        return f"{100 * value:+.1f}pp"
    if style == "int":
        return f"{value:,}"
    if style == "params":
        return parameter_count(value)
    if style == "bytes":
        return next(
            f"{value / d:.1f} {u}"
            for d, u in ((2**30, "GB"), (2**20, "MB"), (2**10, "kB"), (1, "B"))
            if value >= d or d == 1
        )
    if style == "s":
        return f"{value:.2f}s" if value < 10 else (f"{value:.0f}s" if value < 120 else f"{value / 60:.1f} min")
    if style == "g":
        return f"{value:g}"
    return format(value, style)


def _signed(delta: float | None, significant: bool | None) -> str:
    """The colour a delta may wear: up or down only when its test says the change is significant."""
    return "flat" if delta is None or not significant or delta == 0 else "up" if delta > 0 else "down"


def _badge(state: str | None) -> Markup:
    state = state or "pending"
    label = state.upper() if state in ("running", "failed") else state
    return Markup('<span class="badge {}">{}</span>').format(state.split(":")[0].replace(" ", "-"), escape(label))
