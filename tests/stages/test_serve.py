"""The serve stage's pure parts: the drift of a running server's settings (Terraform's refresh)."""

from __future__ import annotations

from anvil.stages.serve import settings_drift


def test_settings_drift_names_each_changed_setting():
    started = {"kv_bits": 4, "kv_quant_scheme": "turboquant", "temperature": 0.0}
    assert settings_drift(started, dict(started)) is None
    assert settings_drift(started, {**started, "kv_bits": 2}) == (
        "its runtime settings were changed since it started (PATCH /v1/settings): kv_bits 4 -> 2"
    )
    assert settings_drift(None, {"kv_bits": 2}) is None, "a server recorded before settings were: no drift known"
    assert settings_drift(started, None) is None, "a server that does not say: cannot tell"
    many = settings_drift({f"k{i}": i for i in range(6)}, {f"k{i}": -i - 1 for i in range(6)})
    assert many is not None and many.endswith("and 2 more")
