"""What `apply` runs: a plan made now from the recipe and the arguments, or a saved plan (`anvil plan -out
FILE`, given in place of the recipe) made again from the request it carries and refused, with what changed,
when anything it was made from is no longer the same (planning/saved.py compares)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from anvil.errors import AnvilError, StalePlan
from anvil.planning.plan import Plan
from anvil.planning.saved import differences, parse
from anvil.project import Project, open_project

Opened = Callable[[Project, str], None]  # told of each project opened (the CLI warns of contamination)


def planned(recipe: str, targets: Collection[str], replace: Collection[str], exclude: Collection[str],
            opened: Opened) -> tuple[Project, Plan, dict[str, Any] | None]:  # fmt: skip
    """The project, its plan and the saved plan it was checked against (None for a plan made now)."""
    if not recipe.endswith(".json"):
        project = open_project(recipe)
        opened(project, recipe)
        return project, project.plan(targets, replace, exclude), None
    if targets or replace or exclude:
        raise AnvilError(f"{recipe} is a saved plan: it carries its own --target, --replace and --exclude")
    try:
        saved = parse(Path(recipe).read_text(encoding="utf-8"), recipe)
    except (OSError, UnicodeDecodeError) as e:
        raise AnvilError(f"{recipe}: cannot read the saved plan ({getattr(e, 'strerror', None) or e})") from None
    project = open_project(saved["recipe"])
    opened(project, saved["recipe"])
    request = saved["request"]
    plan = project.plan(request["targets"], request["replace"], request["exclude"])
    if changed := differences(saved, plan, project.state.load()):
        raise StalePlan(changed)
    return project, plan, saved
