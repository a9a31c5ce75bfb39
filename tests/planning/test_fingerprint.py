"""A stage's fingerprint is its content: kind, code, settings, its inputs by the role they play and the
files it reads; never a stage id, so a sweep's variant equal to a built round is that round's artifacts.

    round.train -> round.fuse            variant.train (same content) -> variant.fuse (same fingerprint)
"""

from __future__ import annotations

from pydantic import BaseModel

from anvil.planning.graph import Graph, Node
from anvil.planning.plan import make_plan


class Cfg(BaseModel):
    rate: float = 2e-3


def test_stages_with_the_same_content_share_a_fingerprint_whatever_their_ids():
    nodes = [
        Node("round.train", "train", Cfg()),
        Node("round.fuse", "fuse", Cfg(), needs={"adapter": "round.train"}),
        Node("round(rate=2e-3).train", "train", Cfg()),
        Node("round(rate=2e-3).fuse", "fuse", Cfg(), needs={"adapter": "round(rate=2e-3).train"}),
        Node("other.fuse", "fuse", Cfg(), needs={"parent": "round.train"}),  # another role: another stage
    ]
    prints = {a.stage: a.fingerprint for a in make_plan(Graph({n.id: n for n in nodes}), {}, {}).actions}
    assert prints["round(rate=2e-3).fuse"] == prints["round.fuse"]
    assert prints["other.fuse"] != prints["round.fuse"]
