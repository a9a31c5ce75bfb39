"""Recorded state: the shared store, each recipe's own state, stat cache, locks, atomic writes."""

from __future__ import annotations

from pathlib import Path


def state_folder(recipe: Path) -> Path:
    """Where a recipe keeps its own state: beside it, never shared."""
    recipe = recipe.resolve()
    return recipe.parent / ".anvil" / "state" / recipe.name
