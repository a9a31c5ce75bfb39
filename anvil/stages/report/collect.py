"""The dashboard's data: every section of the page as plain JSON values, each kind's from its `page` (its
sections of the page, read from stage records and artifacts). One function for both callers: the report
stage (its inputs, all built) and the live page (the project's state while an apply runs). Every figure
carries `from`, the stage it was read from; `sources` maps each stage to its fingerprint, so a reader can
trace any number with `anvil status`."""

from __future__ import annotations

from typing import Any

from anvil.stages.kinds import KINDS
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View

FORMAT = 2  # 2: what a round targets is `targets` (the gate's), no longer inside `rounds`


def dashboard(config: ReportConfig, view: View) -> dict[str, Any]:
    data: dict[str, Any] = {"format": FORMAT, "project": config.project, "template": config.template, "live": view.live}
    # the pipeline table is the page's own: the packages and the machine, then each kind's rows
    architecture = {"packages": view.environment.get("packages"), "machine": view.environment.get("machine")}
    for stage in KINDS:
        sections = stage.page(config, view) if stage.page is not None else {}
        architecture |= sections.pop("architecture", {})
        data |= sections
    data["architecture"] = architecture
    data["sources"] = {
        sid: {
            "kind": record.kind,
            "fingerprint": record.fingerprint,
            "state": view.states.get(sid),
            "started": record.started,
            "duration_s": record.duration_s,
            "tokens_per_s": record.envelope.tokens_per_s,  # of the stages that generate (`Throughput`)
        }
        for sid, record in sorted(view.records.items())
        if sid in view.states
    }
    return data
