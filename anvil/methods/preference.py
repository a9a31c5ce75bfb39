"""What a preference round (`method = "dpo"` or `"orpo"`) takes in the recipe: its `preference` table.
Shared by the two methods; each says which of its fields it reads (SETTINGS_FIELDS) and what it refuses
(`problem`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from anvil.recipe.base import Strict


class Preference(Strict):
    """How a preference round (`method = "dpo"` or `"orpo"`) weighs chosen against rejected answers."""

    beta: float = Field(
        default=0.1,
        gt=0,
        le=100,
        description="DPO's temperature on the log-ratio margin; ORPO's weight of the odds-ratio term.",
    )
    loss_type: Literal["sigmoid", "hinge", "ipo", "dpop"] = Field(
        default="sigmoid", description="DPO loss: `sigmoid` (the paper's), `hinge`, `ipo` or `dpop` (DPO only)."
    )
    delta: float = Field(
        default=50.0, ge=0, le=1e4, description="DPOP's penalty on a chosen answer less likely than the reference's."
    )
    reference: Literal["parent"] = Field(
        default="parent",
        description="DPO's frozen reference model: the parent's fused weights, the model the round starts from.",
    )
