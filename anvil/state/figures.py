"""Typed, versioned results of a stage, read back from its artifact: the base every result model derives
from and the one way to read one, so that a reader gets fields, not a dict read by string key, and a file
that is damaged or of a version this Anvil does not know is an error naming it, never a KeyError."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from anvil.errors import AnvilError, first_error

F = TypeVar("F", bound="Figures")


class Figures(BaseModel):
    """Read back exactly as written; a field this version does not know is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read(cls: type[F], path: Path) -> F:
    """The results in `path`: an error naming it when it is missing, damaged or of another version."""
    try:
        return cls.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        why = "missing"
    except OSError as e:
        why = f"unreadable ({e.strerror})"
    except ValidationError as e:
        where, said = first_error(e)
        why = f"not results this Anvil reads ({where or 'the file'}: {said})"
    raise AnvilError(
        f"{path}: {why}: the artifact was changed outside Anvil or written by another version; "
        "`anvil plan` shows what to rebuild"
    )
