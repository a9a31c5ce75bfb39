"""A plan saved to a file (`anvil plan -out plan.json`) and the check that it still holds when
`anvil apply plan.json` runs it: the plan you read is the plan that runs, or nothing runs.

A saved plan is bound to what it was made from: every stage's fingerprint and act, the digest of every
file it read, and the recorded state (each stage's fingerprint, outcome and, for a server, its process).
Applying it plans again from the same request and refuses, listing the differences, unless all agree."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from anvil.errors import AnvilError, first_error
from anvil.planning.plan import Plan
from anvil.planning.record import StageRecord

FORMAT = "anvil-plan"
VERSION = 1
REQUEST_KEYS = ("targets", "replace", "exclude")


def bound_state(records: Mapping[str, StageRecord]) -> dict[str, str]:
    """What a plan assumed of the recorded state, one short line per stage: a stage built again since
    (even to the same fingerprint, as `--replace` does) makes a saved plan stale, as Terraform's does."""
    return {
        sid: " ".join(filter(None, (r.fingerprint[:16], r.outcome.value, r.started, str(r.envelope.pid or ""))))
        for sid, r in sorted(records.items())
    }


def to_saved(plan: Plan, recipe: str, records: Mapping[str, StageRecord], request: Mapping[str, list[str]]) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "recipe": recipe,
        "request": {key: list(request.get(key, [])) for key in REQUEST_KEYS},
        "files": dict(plan.files),
        "state": bound_state(records),
        "plan": plan.to_json(),
    }


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class SavedAction(_Loose):
    stage: str
    act: str
    fingerprint: str


class SavedInner(_Loose):
    actions: list[SavedAction]


class SavedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    targets: list[str] = []
    replace: list[str] = []
    exclude: list[str] = []


class SavedPlan(BaseModel):
    """A saved plan as `anvil apply` reads it back: a file a user may edit, copy or cut short, so every
    field is checked before any is used."""

    model_config = ConfigDict(extra="forbid", strict=True)
    format: str
    version: int
    recipe: str = Field(min_length=1)
    request: SavedRequest
    files: dict[str, str]
    state: dict[str, str]
    plan: SavedInner


def looks_saved(text: str) -> bool:
    """Whether a file's text is a saved plan rather than a recipe (by content, whatever its name: a TOML
    recipe never opens with `{`)."""
    return text.lstrip().startswith("{")


def parse(text: str, shown_as: str) -> dict[str, Any]:
    """A saved plan's contents, or one error saying why this file is not one anvil can apply."""
    try:
        saved = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise AnvilError(f"{shown_as}: not a saved plan (not JSON: {e})") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise AnvilError(f"{shown_as}: not a saved plan (expected the output of `anvil plan -out {shown_as}`)")
    if saved.get("version") != VERSION:
        raise AnvilError(
            f"{shown_as}: saved plan version {saved.get('version')!r}, this anvil reads version "
            f"{VERSION}; run `anvil plan -out {shown_as}` again"
        )
    try:
        checked = SavedPlan.model_validate(saved)
    except ValidationError as e:
        where, said = first_error(e)
        raise AnvilError(
            f"{shown_as}: {where}: {said.lower()} (the file was edited or cut short; run "
            f"`anvil plan -out {shown_as}` again)"
        ) from None
    return checked.model_dump()


def differences(saved: Mapping[str, Any], plan: Plan, records: Mapping[str, StageRecord]) -> list[str]:
    """Everything that changed between the saved plan and a plan made now; empty when it still holds."""
    found = []
    now_files = plan.files
    for path in sorted(saved["files"].keys() | now_files.keys()):
        before, after = saved["files"].get(path), now_files.get(path)
        if before != after:
            found.append(f"{path}: {'added' if before is None else 'removed' if after is None else 'changed'}")
    now_state = bound_state(records)
    for sid in sorted(saved["state"].keys() | now_state.keys()):
        before, after = saved["state"].get(sid), now_state.get(sid)
        if before != after:
            what = "recorded since" if before is None else "forgotten since" if after is None else "recorded anew"
            found.append(f"{sid}: {what} (another apply, `down` or a restore ran)")
    then = {a["stage"]: a for a in saved["plan"]["actions"]}
    now = {a.stage: a for a in plan.actions}
    for stage in list(then) + [s for s in now if s not in then]:
        planned, action = then.get(stage), now.get(stage)
        if planned is None or action is None:
            found.append(f"{stage}: {'not in the saved plan' if planned is None else 'no longer in the plan'}")
        elif (planned["act"], planned["fingerprint"]) != (action.act.value, action.fingerprint):
            found.append(
                f"{stage}: planned {planned['act']} of {planned['fingerprint'][:8]}, "
                f"now {action.act.value} of {action.fingerprint[:8]}"
                + (f" ({action.reasons[0]})" if action.reasons else "")
            )
    return found
