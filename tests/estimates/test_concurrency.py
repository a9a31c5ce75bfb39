"""`concurrency = "auto"`: requests at once chosen from memory, pure arithmetic, and what the plan says."""

from __future__ import annotations

from anvil.estimates.arithmetic import GB
from anvil.estimates.concurrency import AUTO_CAP, chosen


def peak_of(weights: float, per_request: float):
    return lambda in_flight: weights + in_flight * per_request


def test_the_memory_beside_the_weights_decides_up_to_the_cap():
    # a 31B model at 4-bit KV on a 96 GB Mac: 62 GB of weights, 2 GB of KV cache a request
    count, why = chosen(peak_of(62 * GB, 2 * GB), 96 * GB, 0.85)
    assert count == AUTO_CAP == 8 and "memory for 9 beside the weights, at most 8" in why and "2.00 GB each" in why
    count, why = chosen(peak_of(62 * GB, 4 * GB), 96 * GB, 0.85)
    assert count == 4 and "memory for 4 beside the weights" in why and "at most" not in why


def test_a_model_that_barely_fits_still_gets_one_request():
    count, why = chosen(peak_of(80 * GB, 4 * GB), 96 * GB, 0.85)
    assert count == 1 and "no memory beside the weights" in why


def test_a_tiny_model_is_capped():
    count, why = chosen(peak_of(3e6, 3e5), 24 * GB, 0.85)
    assert count == AUTO_CAP and "0.3 MB each" in why


def test_an_unknown_peak_is_no_choice():
    assert chosen(lambda n: None, 24 * GB, 0.85) is None


def test_the_default_recipe_plans_its_evaluations_with_a_chosen_concurrency(tmp_path, capsys):
    import shutil

    from anvil.cli import main
    from anvil.project import open_project
    from tests.conftest import REPO

    shutil.copy(REPO / "anvil.toml", tmp_path)
    shutil.copytree(REPO / "data", tmp_path / "data")
    shutil.copytree(REPO / "evals", tmp_path / "evals")
    project = open_project(tmp_path / "anvil.toml")
    generating = [n for n in project.graph.nodes.values() if n.kind in ("transcripts", "knowledge", "serving")]
    assert generating and all(n.options.concurrency == (1 if n.options.sampled else AUTO_CAP) for n in generating)
    assert set(project.concurrency) == {n.id for n in generating}
    assert main(["plan", str(tmp_path / "anvil.toml")]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "Requests at once (auto) for knowledge: 8 at once" in said, said
    assert "Requests at once (auto) for transcripts, serving: 1 at once: its answers are sampled" in said, said
