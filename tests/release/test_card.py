"""The card's metadata, pure: what the Hub is told of the base model and how the export relates to it."""

from __future__ import annotations

from anvil.release.card import Lineage, metadata

REPORT = {"composites": [], "knowledge": []}


def lineage(*models: dict) -> Lineage:
    root = {"model": "base", "parent": None, "source": "hf:google/gemma-4-31b-it"}
    return Lineage("p", [root, *models], "hf:google/gemma-4-31b-it", "gemma", "")


V1 = {"model": "v1", "parent": "base", "dataset": "d", "method": "sft"}
V2 = {"model": "v2", "parent": "v1", "dataset": "d", "method": "sft"}


def test_a_round_on_a_hub_model_is_its_finetune_and_its_adapter_an_adapter_of_it():
    meta = metadata(REPORT, lineage(V1), adapter=False)
    assert (meta.base_model, meta.relation, meta.license) == ("google/gemma-4-31b-it", "finetune", "gemma")
    assert metadata(REPORT, lineage(V1), adapter=True).relation == "adapter"


def test_a_stacked_rounds_adapter_names_no_hub_base_it_does_not_apply_to():
    assert metadata(REPORT, lineage(V1, V2), adapter=False).relation == "finetune"
    stacked = metadata(REPORT, lineage(V1, V2), adapter=True)
    assert stacked.base_model is None and stacked.relation is None, "it applies to v1's fused weights"


def test_a_quantized_hub_model_is_quantized_and_a_quantized_round_a_finetune():
    q = {"model": "q4", "parent": "base", "quantize": "4-bit affine (group 64)"}
    assert metadata(REPORT, lineage(q), adapter=False).relation == "quantized"
    v2q4 = {"model": "v2q4", "parent": "v2", "quantize": "4-bit affine (group 64)"}
    meta = metadata(REPORT, lineage(V1, V2, v2q4), adapter=False)
    assert meta.relation == "finetune" and "quantized" in meta.tags
