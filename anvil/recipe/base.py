"""What every recipe model shares: strictness, the name and seed rules."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ONE_LINE = r"^[^\x00-\x1f]+$"
# hf:ORG/NAME (a Hub repo id), path:ANYTHING, synthetic:NAME
SOURCE_PATTERN = (
    r"^(hf:[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*|path:.+|synthetic:[A-Za-z0-9][A-Za-z0-9._-]*)$"
)
# path:FILE, or hf:ORG/NAME/FILE (a file of a dataset repo on the Hugging Face Hub)
DATA_PATTERN = r"^(path:.+|hf:[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*/[^\s]+)$"
# What each pattern means, for error messages.
PATTERNS = {
    NAME_PATTERN: "letters, digits, _ or -, starting with a letter",
    ENV_PATTERN: "an environment variable name: letters, digits and _",
    ONE_LINE: "one line of text, without newlines or other control characters",
    SOURCE_PATTERN: "hf:ORG/NAME, path:DIR or synthetic:NAME",
    DATA_PATTERN: "path:FILE or hf:ORG/NAME/FILE",
}
SEED_MAX = 2**32 - 1  # numpy's seeds are 32-bit
Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]
NonEmpty = Annotated[str, Field(min_length=1)]


class Strict(BaseModel):
    # strict: `steps = "20"` and `learning_rate = true` are errors, as they are for the JSON Schema
    # (editors); no inf or nan anywhere.
    # defer_build: a model's validator is made when it is first used, not when its class is: validating a
    # recipe builds the Recipe's, which holds every nested model's, rather than one per class as well.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False, defer_build=True)
