"""`anvil export` on a lineage built with stand-ins for MLX (the knowledge and gate stages real): the card
is what the Hub reads (huggingface_hub's own loader) and its every figure is the dashboard's; a model
whose gates failed needs --force; nothing is written into the store, and a folder that holds anything
is refused whole."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import ModelCard

from anvil.errors import AnvilError
from anvil.project import open_project
from anvil.release.folder import export
from tests.conftest import apply_without_mlx, chat_endpoint, serve_models_from
from tests.stages.test_knowledge import FAKE, answer, make


def adapter(workdir) -> dict:
    (workdir / "adapters.safetensors").write_bytes(b"weights")
    (workdir / "adapter_config.json").write_text(json.dumps({"lora_parameters": {"rank": 8}}))
    return {}


def built(folder, monkeypatch, gate: float = 0.0):
    with chat_endpoint(answer) as (port, _):
        serve_models_from(monkeypatch, port)
        apply_without_mlx(make(folder, gate=gate), {**FAKE, "train": adapter})
    return open_project(folder / "anvil.toml")


def store_files(project) -> set[str]:
    return {str(p) for p in project.store.root.rglob("*")}


def test_the_card_is_the_hubs_and_its_figures_are_the_dashboards(tmp_path, monkeypatch):
    project = built(tmp_path / "p", monkeypatch)
    before = store_files(project)
    done = export(project, "v1", tmp_path / "release")
    assert store_files(project) == before, "export writes nothing into the store"
    assert {"README.md", "dashboard.html", "anvil-report.json", "config.json"} <= set(done.files)
    report = json.loads((tmp_path / "release" / "anvil-report.json").read_text())
    record = project.state.load()["report"]
    assert report == json.loads((project.store.artifact(record.fingerprint) / "report.json").read_text())
    card = ModelCard.load(tmp_path / "release" / "README.md")
    found = {(r.dataset_type, r.metric_type): r.metric_value for r in card.data.eval_results}
    expected = {(row["benchmark"], "accuracy"): row["score"] for row in report["knowledge"] if row["model"] == "v1"}
    expected |= {
        (f"anvil-suite/{c['suite']}", "composite"): c["composite"]
        for c in report["composites"]
        if c["model"] == "v1" and c.get("suite")
    }
    assert found == expected and len(found) == 2, found
    assert card.data.library_name == "mlx" and card.data.base_model is None, "a synthetic root is not on the Hub"
    text = (tmp_path / "release" / "README.md").read_text()
    assert "| knowledge.gsm8k_cot_max16.delta_vs_base.ci_low |" in text and "base → v1" in text
    assert "Not gated" not in text


def test_a_model_whose_gate_failed_needs_force_and_its_card_says_so(tmp_path, monkeypatch):
    project = built(tmp_path / "p", monkeypatch, gate=1.0)  # a bound no interval of 6 items reaches
    with pytest.raises(AnvilError, match=r"v1 failed 1 gate\(s\): knowledge.gsm8k_cot_max16.*--force"):
        export(project, "v1", tmp_path / "release")
    assert not (tmp_path / "release").exists(), "refused whole"
    done = export(project, "v1", tmp_path / "release", force=True)
    assert (
        done.forced and "> **Not gated.** Exported with `--force`" in (tmp_path / "release" / "README.md").read_text()
    )


def test_an_adapter_with_its_parents_tokenizer_and_clear_refusals(tmp_path, monkeypatch):
    project = built(tmp_path / "p", monkeypatch)
    done = export(project, "v1", tmp_path / "adapter", adapter=True)
    assert {"adapters.safetensors", "adapter_config.json", "README.md"} <= set(done.files)
    assert "config.json" not in done.files, "the adapter alone, not the checkpoint"
    assert "mlx_lm" in (tmp_path / "adapter" / "README.md").read_text()
    with pytest.raises(AnvilError, match="only a round has an adapter"):
        export(project, "base", tmp_path / "other", adapter=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(AnvilError, match="already exists and is not an empty folder"):
        export(project, "v1", tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    with pytest.raises(AnvilError, match="no such model"):
        export(project, "v9", tmp_path / "other")


def test_a_push_without_the_network_says_what_to_do_and_keeps_the_folder(tmp_path, monkeypatch):
    from anvil.backends import hub

    project = built(tmp_path / "p", monkeypatch)
    done = export(project, "v1", tmp_path / "release")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(AnvilError, match=r"--push me/v1: the upload failed .*HF_TOKEN"):
        hub.push(done.folder, "me/v1")
    assert (tmp_path / "release" / "README.md").is_file()
