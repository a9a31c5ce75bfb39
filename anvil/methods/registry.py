"""The training methods, by the name a round's `method` gives. A new method is a module and an entry here
(and its name in `Method`, which the schema is made from; a test holds the two together). The type
checker holds each module to the `Method` protocol."""

from __future__ import annotations

from typing import Literal

from anvil.methods import dpo, grpo, orpo, sft
from anvil.methods import method as protocol

Method = Literal["sft", "dpo", "orpo", "grpo"]  # what `method =` may say: the names below

METHODS: dict[str, protocol.Method] = {sft.NAME: sft, dpo.NAME: dpo, orpo.NAME: orpo, grpo.NAME: grpo}
