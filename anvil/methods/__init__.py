"""Training methods, one module each (sft.py, dpo.py, orpo.py), each a `Method` (method.py); registry.py
lists them. A new method is a module and an entry there."""
