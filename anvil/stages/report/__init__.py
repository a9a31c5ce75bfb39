"""The report stage (stage.py) and everything it owns: its settings (config.py), the dashboard's data
(collect.py, sections.py, view.py), its charts (charts.py) and its page (page.py)."""
