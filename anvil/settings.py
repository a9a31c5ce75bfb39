"""Settings read from the environment (pydantic-settings, which matches ANVIL_* names in any case), so CI and
shared machines can move the store and the remote."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationError

from anvil.errors import AnvilError


@dataclass(frozen=True)
class Environment:
    store: str | None = None  # ANVIL_STORE: the artifact store's folder; default `.anvil/` beside the recipe
    remote: str | None = None  # ANVIL_REMOTE: the remote store, overriding the recipe's [store] remote


def environment() -> Environment:
    """The ANVIL_* settings; an empty one is refused, naming it. pydantic-settings is imported (~25 ms) only
    when some ANVIL_* variable is set at all."""
    if not any(key[:6].upper() == "ANVIL_" for key in os.environ):
        return Environment()
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="ANVIL_")

        store: str | None = Field(default=None, min_length=1, description="Artifact store folder (ANVIL_STORE).")
        remote: str | None = Field(default=None, min_length=1, description="Remote store (ANVIL_REMOTE).")

    try:
        settings = Settings()
    except ValidationError as e:
        name = f"ANVIL_{str(e.errors()[0]['loc'][0]).upper()}"
        expected = "s3://BUCKET/PREFIX or a folder" if name == "ANVIL_REMOTE" else "the store's folder, or unset it"
        raise AnvilError(f"{name} is set but empty (expected {expected})") from None
    return Environment(settings.store, settings.remote)


def store_path(recipe_root: Path) -> Path:
    configured = environment().store
    path = Path(configured).expanduser().resolve() if configured else recipe_root / ".anvil"
    if path.exists() and not path.is_dir():
        where = f"ANVIL_STORE={configured}" if configured else str(path)
        raise AnvilError(f"{where}: not a folder (expected the folder of Anvil's artifact store)")
    return path
