"""The model served is the model trained: the synthetic base is one function in mlx-lm (training) and in
mlx-vlm (serving), towers and all; a base whose config leaves a field to each runtime's default is two, and
the round on it fails with a message naming both runtimes, its dependents blocked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from anvil.planning.record import Outcome
from anvil.project import open_project
from anvil.recipe.models import Synthetic
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

SIZES = Synthetic(hidden_size=32, intermediate_size=64, num_layers=3, num_heads=2, head_dim=16, vocab_size=320)
ROUND = """\
[project]
name = "parity"

[models.base]
source = "path:base"

[models.v1]
parent = "base"
dataset = "domain"
lora = { rank = 4, last_layers = 2 }
train = { steps = 4, batch_size = 2, learning_rate = 2e-3, max_seq_length = 128, val_interval = 4, val_batches = 1 }

[datasets.domain]
valid_fraction = 0.2
sources = [{ path = "data/domain.jsonl", category = "domain", count = 20 }]
"""


def build_base(folder: Path) -> Path:
    from anvil.backends import synthetic

    folder.mkdir(parents=True)
    synthetic.build(SIZES, folder)
    return folder


def logits_in_both(folder: Path):
    import mlx.core as mx
    import numpy as np
    from mlx_lm import load

    from anvil.backends.fuse import load_vlm

    ids = mx.array([[4, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 5, 4]])
    trained = np.array(load(str(folder))[0](ids).astype(mx.float32))
    served_model = load_vlm(folder)
    out = served_model.language_model(ids)
    served = np.array((out.logits if hasattr(out, "logits") else out).astype(mx.float32))
    return trained, served, served_model


def test_the_synthetic_base_is_one_function_in_both_runtimes(tmp_path):
    base = build_base(tmp_path / "base")
    trained, served, model = logits_in_both(base)
    assert float(abs(trained - served).max()) <= 1e-4
    assert model.vision_tower is not None and getattr(model, "audio_tower", None) is not None
    config = json.loads((base / "config.json").read_text())
    assert {"rope_parameters", "final_logit_softcapping", "rms_norm_eps"} <= set(config["text_config"])
    assert config["audio_config"]["num_hidden_layers"] == 1


def test_a_field_left_to_the_runtimes_fails_the_round(tmp_path, monkeypatch):
    base = build_base(tmp_path / "base")
    config = json.loads((base / "config.json").read_text())
    del config["text_config"]["rope_parameters"]  # mlx-lm and mlx-vlm fill it differently
    (base / "config.json").write_text(json.dumps(config))
    trained, served, _ = logits_in_both(base)
    assert float(abs(trained - served).max()) > 1e-3  # two functions, as the check must see
    shutil.copytree(REPO / "data", tmp_path / "data")
    (tmp_path / "anvil.toml").write_text(ROUND)
    monkeypatch.chdir(tmp_path)
    project = open_project("anvil.toml")
    project.apply(project.plan())
    records = open_project("anvil.toml").state.load()
    fused = records["v1.fuse"]
    assert fused.outcome is Outcome.FAILED
    message = fused.metrics["parity"]["message"]
    assert "mlx-vlm (the fused checkpoint, as served) differs from mlx-lm (parent + adapter, as trained)" in message
    assert "held-out prompt" in message and fused.metrics["parity"]["verdict"] == "differs"
    assert fused.reason == message, "every surface reads the reason from the record"
    again = subprocess.run([sys.executable, "-m", "anvil", "apply"], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 1 and "v1.fuse FAILED" in again.stderr and message in again.stderr


def test_the_round_on_the_synthetic_base_is_served_as_trained(tmp_path, monkeypatch):
    build_base(tmp_path / "base")
    shutil.copytree(REPO / "data", tmp_path / "data")
    (tmp_path / "anvil.toml").write_text(ROUND)
    monkeypatch.chdir(tmp_path)
    project = open_project("anvil.toml")
    project.apply(project.plan())
    fused = open_project("anvil.toml").state.load()["v1.fuse"]
    assert fused.outcome is Outcome.OK and fused.metrics["audio_tower"] and fused.metrics["vision_tower"]
    parity = fused.metrics["parity"]
    assert parity["verdict"] == "within tolerance" and parity["max_logit_diff"] <= 1e-4
    assert parity["top1_agreement"] == 1.0 and parity["greedy_agreement"] == 1.0


HF_ROUND = ROUND.replace('source = "path:base"', 'source = "path:hf-base"')
FIXTURE = REPO / "tests" / "fixtures" / "tiny-gemma4-hf"


def test_the_runtimes_compute_what_transformers_computes_on_its_own_checkpoint():
    """A checkpoint transformers saved, in its own key layout: mlx-lm and mlx-vlm against the logits
    transformers recorded (scripts/make_hf_checkpoint.py), each runtime on its own."""
    import numpy as np

    reference = json.loads((FIXTURE / "reference_logits.json").read_text())
    assert reference["tokens"] == [4, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 5, 4]
    trained, served, model = logits_in_both(FIXTURE)
    expected = np.array(reference["logits"], dtype=np.float32)
    assert float(abs(trained[0] - expected).max()) <= 1e-4, "mlx-lm departs from transformers"
    assert float(abs(served[0] - expected).max()) <= 1e-4, "mlx-vlm departs from transformers"
    assert model.vision_tower is not None and getattr(model, "audio_tower", None) is not None


def test_a_lineage_on_a_transformers_checkpoint_trains_fuses_and_serves_as_trained(tmp_path, monkeypatch):
    import numpy as np
    from safetensors.numpy import load_file

    from anvil.backends.server import free_port

    shutil.copytree(FIXTURE, tmp_path / "hf-base")
    shutil.copytree(REPO / "data", tmp_path / "data")
    port = free_port()
    (tmp_path / "anvil.toml").write_text(HF_ROUND + f'\n[serve]\nmodel = "v1"\nport = {port}\n')
    monkeypatch.chdir(tmp_path)
    project = open_project("anvil.toml")
    project.apply(project.plan())
    project = open_project("anvil.toml")
    try:
        records = project.state.load()
        fused = records["v1.fuse"]
        assert fused.outcome is Outcome.OK, fused.metrics
        assert fused.metrics["parity"]["verdict"] == "within tolerance" and fused.metrics["audio_tower"]
        assert records["serve"].metrics["port"] == port and records["serve"].metrics["validation_agreement"] == 1.0
        base = load_file(str(tmp_path / "hf-base" / "model.safetensors"))
        out = load_file(str(project.store.artifact(fused.fingerprint) / "model.safetensors"))
        towers = [k for k in base if k.startswith(("model.vision_tower.", "model.audio_tower.", "model.embed_"))]
        assert any("audio_tower" in k for k in towers) and all(np.array_equal(base[k], out[k]) for k in towers)
        changed = {k for k in base if not np.array_equal(base[k], out[k])}
        assert changed and all(k.startswith("model.language_model.layers.") for k in changed)
    finally:
        project.down()
