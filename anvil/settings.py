"""Settings read from the environment (pydantic-settings), so CI and shared machines can move the store."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from anvil.errors import AnvilError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANVIL_")

    store: str | None = Field(
        default=None,
        min_length=1,
        description="Artifact store folder (ANVIL_STORE); default `.anvil/` beside the recipe.",
    )


def store_path(recipe_root: Path) -> Path:
    try:
        configured = Settings().store
    except ValidationError:
        raise AnvilError("ANVIL_STORE is set but empty (expected the store's folder, or unset it)") from None
    path = Path(configured).expanduser().resolve() if configured else recipe_root / ".anvil"
    if path.exists() and not path.is_dir():
        where = f"ANVIL_STORE={configured}" if configured else str(path)
        raise AnvilError(f"{where}: not a folder (expected the folder of Anvil's artifact store)")
    return path
