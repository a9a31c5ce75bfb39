"""The serve stage's checks that need no server: the drift of a running server's settings (Terraform's
refresh), and the port a planned start would find taken."""

from __future__ import annotations

import socket

from anvil.planning.graph import Node
from anvil.recipe.serving import Serve
from anvil.stages.serve import preflight, settings_drift


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


def test_plan_warns_of_a_new_port_another_process_holds():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        node = Node("serve", "serve", Serve(model="v2", port=port), resource=True)
        said = preflight(node, None)
        assert said is not None and said.startswith(f"serve: port {port} on 127.0.0.1 is held by ")
        assert "apply would fail to start the server there" in said
    assert preflight(node, None) is None, "a free port: nothing to say"
