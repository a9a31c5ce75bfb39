"""The stage kinds that build a lineage, in pipeline order: a new kind is its module (with its page partial
beside it) and one entry in `KINDS`. The registry adds the report, which observes them all and draws each
one's `page`."""

from __future__ import annotations

from anvil.stages import (
    calibration,
    dataset,
    evaluate,
    fuse,
    gate,
    knowledge,
    quantize,
    select,
    serve,
    serving,
    source,
    train,
    transcripts,
)
from anvil.stages.stage import Stage

KINDS: tuple[Stage, ...] = (
    dataset.STAGE,
    source.STAGE,
    train.STAGE,
    fuse.STAGE,
    quantize.STAGE,
    transcripts.STAGE,
    calibration.STAGE,
    evaluate.STAGE,
    knowledge.STAGE,
    select.STAGE,
    gate.STAGE,
    serve.STAGE,
    serving.STAGE,
)
