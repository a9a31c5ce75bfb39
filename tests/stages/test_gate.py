"""The gate table (apply's summary and the seed's GATE table of a failure): any metric name, 80 columns."""

from __future__ import annotations

from anvil.stages.gate import table

SHORT = {"metric": "tiny.composite", "value": 2.17, "min": 1.5, "max": None, "passed": True}
LONG = {"metric": "tiny.delta_vs_parent.category.conversational.ci_low", "value": None, "min": 0.0, "max": None}


def test_gates_line_up_and_a_long_name_is_never_cut():
    rows = table([SHORT, {**LONG, "passed": False}], marked=True, width=78)
    assert rows[0] == "✓ tiny.composite" + " " * 37 + "     2.17  needs >= 1.5"
    assert rows[1].startswith("✗ " + LONG["metric"]) and all(len(row) <= 80 for row in rows)
    assert len({row.index("needs") for row in rows if "needs" in row}) == 1, "one column of thresholds"


def test_a_name_too_long_for_the_column_goes_on_its_own_line():
    name = "tiny." + "x" * 60
    rows = table([{**SHORT, "metric": name}])
    assert rows == [name, "      2.17  needs >= 1.5"]
