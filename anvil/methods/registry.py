"""The training methods, by the name a round's `method` gives. A new method is a module and an entry here
(and its name in `Method`, which the schema is made from; a test holds the two together). The type
checker holds each module to the `Method` protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from anvil.methods import dpo, grpo, orpo, sft
from anvil.methods import method as protocol

Method = Literal["sft", "dpo", "orpo", "grpo"]  # what `method =` may say: the names below

METHODS: dict[str, protocol.Method] = {sft.NAME: sft, dpo.NAME: dpo, orpo.NAME: orpo, grpo.NAME: grpo}
# The tables a round may hold a method's settings in: each is a field of the recipe's Model and of the train
# stage's config (a test holds the three together), and everything else reads them through `settings_in`.
TABLES: tuple[str, ...] = tuple(dict.fromkeys(m.TABLE for m in METHODS.values() if m.TABLE))


def settings_in(holder: object) -> Any:
    """The method settings a round (or a train stage's config, or its recorded config: a mapping) gives, in
    whichever table it gives them; None without any."""
    found = (holder.get(t) if isinstance(holder, Mapping) else getattr(holder, t, None) for t in TABLES)
    return next((s for s in found if s is not None), None)
