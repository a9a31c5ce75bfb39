"""The dashboard: its data (collect.py, sections.py), its charts (charts.py) and its page (page.py)."""
