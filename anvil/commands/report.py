"""`anvil report`: the page at the project's stable path (`.anvil/state/<recipe>/report.html` and
`report.json`), the report of the project's current state. `anvil report` writes it; `apply` rewrites
it after every stage event with the stage in flight as RUNNING (and a training's loss so far), in a page
that reloads itself until the apply ends. Once everything is built it is byte for byte the report stage's artifact."""

from __future__ import annotations

import json
import time
import webbrowser
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from anvil.backends.machine import describe
from anvil.commands import command, open_project
from anvil.console import say, warn
from anvil.errors import EXIT_OK, AnvilError
from anvil.planning.plan import Act
from anvil.recipe.load import shown
from anvil.stages.registry import BY_KIND
from anvil.stages.report.collect import dashboard
from anvil.stages.report.config import report_config
from anvil.stages.report.page import render
from anvil.stages.report.stage import state_of
from anvil.stages.report.view import View
from anvil.state.atomic import write_bytes, write_json

if TYPE_CHECKING:
    from anvil.planning.plan import Action, Plan

CURVE_EVERY_S = 10.0  # a training in flight redraws its curve at most this often


def add_to(sub) -> None:
    c = command(sub, "report", run, "write the dashboard: one self-contained HTML page of the project")
    c.add_argument("--open", action="store_true", help="open it in the default browser")
    c.add_argument("--json", action="store_true", help="print the page's data as JSON")


def run(args) -> int:
    path = write(open_project(args.recipe))
    if args.json:
        print(path.with_suffix(".json").read_text(), end="")
    else:
        say(f"Dashboard: {shown(path)}")
    if args.open and not webbrowser.open(path.as_uri()):
        say(f"no browser found here: open {path.as_uri()} yourself", stderr=True)
    return EXIT_OK


def write(project, plan: Plan | None = None) -> Path:
    """The page of the project's state as `plan` (by default a fresh one) leaves it; returns its path."""
    page = LivePage(project, plan or project.plan())
    try:
        page._write(live=False)
    except Exception as e:  # a page that cannot be drawn is this command's error, said in one line
        raise AnvilError(f"cannot draw the dashboard: {type(e).__name__}: {e}") from e
    return page.path


class LivePage:
    """Follows an apply: `event` and `progress` take the executor's callbacks, `close` writes the final page."""

    def __init__(self, project, plan: Plan):
        self.project, self.path = project, project.state.folder / "report.html"
        self.planned = {a.stage: a for a in plan.actions}
        self.finished: dict[str, str] = {}  # stage -> state, for stages this apply has dealt with
        self.running: Action | None = None
        self.drawn = 0.0
        self.broken = False  # the page could not be drawn once: said once, and the apply goes on

    def event(self, event: str, action: Action, seconds: float) -> None:
        if event == "start":
            self.running = action
        elif event != "waiting":
            self.running = None if self.running == action else self.running
            self.finished[action.stage] = {"blocked": "blocked", "error": "failed"}.get(event, "done")
        self._draw(live=True)

    def progress(self, action: Action, fraction: float, message: str) -> None:
        if BY_KIND[action.kind].so_far is not None and time.monotonic() - self.drawn > CURVE_EVERY_S:
            self._draw(live=True)

    def close(self, in_flight: str = "pending") -> None:
        """The page as the apply leaves it; a stage still running then is shown as `in_flight` (failed, or
        pending when the apply was interrupted and the next one resumes it)."""
        if self.running is not None:
            self.finished[self.running.stage] = in_flight
            self.running = None
        self._draw(live=False)

    def _draw(self, live: bool) -> None:
        """The page, drawn; a page that cannot be drawn is a display that failed, never the apply."""
        try:
            self._write(live)
        except Exception as e:
            if not self.broken:
                warn(f"the dashboard could not be drawn ({type(e).__name__}: {e}); the apply goes on")
            self.broken = True

    def _states(self, records) -> dict[str, str]:
        states = {}
        for sid, action in self.planned.items():
            if action.act is Act.ORPHANED or self.project.graph.nodes[sid].observer:
                continue
            record, done = records.get(sid), self.finished.get(sid)
            if self.running is not None and sid == self.running.stage:
                states[sid] = "running"
            elif done in ("blocked", "failed", "pending"):
                states[sid] = done
            elif action.act in (Act.BLOCKED, Act.UNAVAILABLE):
                states[sid] = action.act.value
            elif record is not None and record.fingerprint == action.fingerprint and (done or not action.act.is_change):
                states[sid] = state_of(record)
            else:
                states[sid] = "pending"
        return states

    def _write(self, live: bool) -> None:
        project = self.project
        # The report's own record is no source of the page (the report stage's artifact has none either).
        shown = {sid for sid, node in project.graph.nodes.items() if not node.observer}
        records = {sid: r for sid, r in project.state.load().items() if sid in shown}
        states = self._states(records)
        artifacts = {sid: project.store.artifact(r.fingerprint) for sid, r in records.items()}
        curves = {}
        if self.running is not None and (so_far := BY_KIND[self.running.kind].so_far) is not None:
            curves[self.running.stage] = so_far(project.store.scratch(self.running.fingerprint))
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        running = {"updated": now, "running": self.running.stage if self.running else None}
        view = View(project.loaded.root, records, artifacts, states, running if live else None, curves, describe())
        data = dashboard(report_config(project.loaded.recipe), view)
        if not live and self.path.exists() and _recorded(self.path.with_suffix(".json")) == data:
            return  # nothing changed since the page was written: no need to draw it again
        write_json(self.path.with_suffix(".json"), data)
        write_bytes(self.path, render(data).encode())
        self.drawn = time.monotonic()


def _recorded(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
