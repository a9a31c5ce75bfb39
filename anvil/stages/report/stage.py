"""report: the dashboard, one self-contained HTML page (`report.html`: inline CSS and SVG charts, no
script or font from the network) and the same data as JSON (`report.json`), from the records and
artifacts of every other stage.

It observes the graph (`Node.observer`): it runs last, after whatever was built, and a failed gate or a
held-back server is something it shows, not something that stops it. Its fingerprint is every stage's
fingerprint plus the recipe's notes, so it is rebuilt exactly when something it shows changes. The
page at the project's stable path (report/live.py) is the same rendering of the project's state."""

from __future__ import annotations

from anvil.backends.machine import describe
from anvil.estimates.cost import Cost
from anvil.planning.graph import Node
from anvil.planning.record import Outcome, StageRecord
from anvil.recipe.models import Recipe
from anvil.stages.report.collect import dashboard
from anvil.stages.report.config import ReportConfig, report_config
from anvil.stages.report.page import render
from anvil.stages.report.view import View
from anvil.stages.stage import Recorded, Result, Stage, StageRun, Suites, read_figures
from anvil.state.atomic import write_bytes, write_json

CODE_VERSION = 1
PAGE, DATA = "report.html", "report.json"


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    if not recipe.models:
        return []
    # Its needs are filled in by the graph builder: an observer needs every other stage.
    return [Node(id="report", kind="report", config=report_config(recipe), code_version=CODE_VERSION, observer=True)]


def state_of(record: StageRecord) -> str:
    """A recorded stage as the page shows it: a warning or a failure first, whatever the stage."""
    built = "served" if record.envelope.pid is not None else "built"  # a resource records the process it runs
    return {Outcome.FAILED: "failed", Outcome.WARNED: "warned"}.get(record.outcome, built)


def run(ctx: StageRun[ReportConfig]) -> Result:
    # Roles are stage ids. A need that is not an input was held back by a failure (or cannot be built).
    states = {sid: "blocked" for sid in ctx.node.needs}
    states |= {sid: state_of(record) for sid, record in ctx.records.items()}
    view = View(ctx.root, dict(ctx.records), dict(ctx.inputs), states, environment=describe())
    data = dashboard(ctx.config, view)
    write_json(ctx.out / DATA, data)
    page = render(data)
    write_bytes(ctx.out / PAGE, page.encode())
    return Result.of(Page(bytes=len(page.encode()), stages=len(ctx.records)))


class Page(Recorded):
    bytes: int
    stages: int  # the stages it read


def summary(record: StageRecord) -> str:
    m = read_figures(Page, record)
    return f"{m.bytes / 1000:.0f} kB page of {m.stages} stages"


STAGE = Stage(
    kind="report",
    code_version=CODE_VERSION,
    nodes=nodes,
    run=run,
    summary=summary,
    cost=Cost(start_s=0.05),
    figures=Page,
)
