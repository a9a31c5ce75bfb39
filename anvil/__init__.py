"""Anvil: a fine-tuning lineage as one validated recipe, planned and applied like infrastructure."""

__version__ = "0.1.0"
