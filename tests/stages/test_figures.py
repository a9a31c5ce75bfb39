"""Every stage kind's record is typed: a model per kind (Stage.figures), read through `read_figures`, and a
record that is not this Anvil's is an error naming it, which `status` says instead of failing on."""

from __future__ import annotations

import pytest

from anvil.errors import AnvilError
from anvil.stages.registry import STAGES, summary_of
from anvil.stages.stage import Recorded, read_figures
from tests.conftest import stage_record


def record(kind: str, metrics: dict):
    return stage_record(f"v1.{kind}", kind, metrics=metrics)


def test_every_kind_declares_its_own_figures():
    assert [s.kind for s in STAGES if s.figures is Recorded] == []
    assert len({s.figures for s in STAGES}) == len(STAGES), "one model per kind"


def test_a_record_reads_back_as_its_kind_and_exactly():
    from anvil.stages.gate import Gated

    gated = record("gate", {"passed": False, "gates": 2, "failures": [{"metric": "m", "value": 1.0}]})
    found = read_figures(Gated, gated)
    assert found.failures[0]["metric"] == "m" and not found.guarded and found.reward_guard is None
    assert found.recorded() == gated.metrics, "what the stage set, no more"


@pytest.mark.parametrize(
    ("metrics", "named"),
    [
        ({"passed": True}, "gates: Field required"),
        ({"passed": True, "gates": 1, "failures": [], "extra": 1}, "extra: Extra inputs are not permitted"),
        ({"passed": "perhaps", "gates": 1, "failures": []}, "passed"),
    ],
)
def test_a_record_of_another_version_is_an_error_naming_it_and_status_says_it(metrics, named):
    from anvil.stages.gate import Gated

    with pytest.raises(AnvilError, match="v1.gate: the state's figures are not this Anvil's") as e:
        read_figures(Gated, record("gate", metrics))
    assert named in str(e.value)
    assert "not this Anvil's" in (summary_of(record("gate", metrics)) or ""), "status goes on"


def test_the_envelope_every_kind_may_carry_is_typed_too():
    """The executor's fields (a resource's project and pid, an import's folder) are read through one model."""
    adopted = record("gate", {"passed": True, "gates": 0, "failures": [], "imported_from": "/x/v1-gate"})
    assert adopted.envelope.imported_from == "/x/v1-gate" and adopted.envelope.pid is None
    assert (summary_of(adopted) or "").startswith("imported from /x/v1-gate")
    damaged = record("gate", {"passed": True, "gates": 0, "failures": [], "pid": "not a number"})
    with pytest.raises(AnvilError, match=r"v1.gate: the state's figures are not this Anvil's \(pid: "):
        damaged.envelope  # noqa: B018
    assert "not this Anvil's (pid" in (summary_of(damaged) or ""), "status says it and goes on"
