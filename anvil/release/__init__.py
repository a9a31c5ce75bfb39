"""Releases of what a lineage built: `anvil export`'s folder and its model card."""
