"""Settings read from the environment (pydantic-settings), so CI and shared machines can move the store."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANVIL_")

    store: Path | None = Field(
        default=None, description="Artifact store folder (ANVIL_STORE); default `.anvil/` beside the recipe."
    )


def store_path(recipe_root: Path) -> Path:
    configured = Settings().store
    return configured.resolve() if configured else recipe_root / ".anvil"
