"""The training methods, by the name a round's `method` gives. A new method is a module and an entry here
(and its name in recipe/preference.py's `Method`, which the schema is made from; a test holds the two
together). The type checker holds each module to the `Method` protocol."""

from __future__ import annotations

from anvil.methods import dpo, orpo, sft
from anvil.methods.method import Method

METHODS: dict[str, Method] = {sft.NAME: sft, dpo.NAME: dpo, orpo.NAME: orpo}
