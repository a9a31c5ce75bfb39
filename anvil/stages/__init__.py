"""One module per stage; their registry, in pipeline order, is `registry.py`."""
