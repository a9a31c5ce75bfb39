"""The model lineage for real on a very small Gemma 4: synthetic base -> v1 -> v2 through mlx-lm-lora
training and the VLM-aware fuse, then checks on the weights themselves."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from anvil.project import open_project
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

SMALL = """\
#:schema ./schema/anvil.schema.json
[project]
name = "small"

[models.base]
source = "synthetic:small"
synthetic = { hidden_size = 32, intermediate_size = 64, num_layers = 3, num_heads = 2, head_dim = 16, vocab_size = 320 }

[models.v1]
parent = "base"
dataset = "domain"
lora = { rank = 4, last_layers = 2 }
train = { steps = STEPS, batch_size = 2, learning_rate = 2e-3, max_seq_length = 128, val_interval = 4, val_batches = 2, checkpoint_interval = 4 }

[models.v2]
parent = "v1"
dataset = "behavioral"
lora = { rank = 4, last_layers = 1, targets = ["q_proj", "v_proj"] }
train = { steps = 6, batch_size = 2, learning_rate = 2e-3, max_seq_length = 256, val_interval = 3, val_batches = 2, checkpoint_interval = 3 }

[datasets.domain]
valid_fraction = 0.2
sources = [{ path = "data/domain.jsonl", category = "domain", count = 20 }]

[datasets.behavioral]
valid_fraction = 0.25
sources = [
  { path = "data/tool_use.jsonl", category = "tool_use", count = 8 },
  { path = "data/voice.jsonl", category = "voice", count = 8 },
]
"""


def make(folder: Path, steps: int = 8) -> Path:
    folder.mkdir(exist_ok=True)
    shutil.copytree(REPO / "data", folder / "data")
    (folder / "anvil.toml").write_text(SMALL.replace("STEPS", str(steps)))
    return folder


@pytest.fixture(scope="module")
def lineage(tmp_path_factory):
    folder = make(tmp_path_factory.mktemp("lineage"))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        project = open_project("anvil.toml")
        project.apply(project.plan())
        project = open_project("anvil.toml")
        yield project, {sid: project.store.artifact(r.fingerprint) for sid, r in project.state.load().items()}
    finally:
        os.chdir(cwd)


def tensors(folder: Path) -> dict:
    import mlx.core as mx

    out = {}
    for shard in sorted(folder.glob("*.safetensors")):
        out.update(mx.load(str(shard)))
    return out


def test_everything_builds_and_a_second_apply_does_nothing(lineage):
    project, artifacts = lineage
    assert set(artifacts) == {
        "dataset.domain",
        "dataset.behavioral",
        "base.source",
        "v1.train",
        "v1.fuse",
        "v2.train",
        "v2.fuse",
        "report",
    }
    assert not project.plan().changes


def test_no_artifact_holds_a_path_of_this_machine(lineage):
    """Artifacts live in a store other projects and machines share: no absolute local path inside."""
    project, artifacts = lineage
    paths = [str(project.loaded.root), str(project.store.root), sys.prefix, str(REPO)]
    for folder in artifacts.values():
        for file in (f for f in folder.rglob("*") if f.is_file()):
            data = file.read_bytes()
            assert not [p for p in paths if p.encode() in data], file


def test_training_records_what_the_report_needs(lineage):
    project, artifacts = lineage
    metrics = project.state.load()["v1.train"].metrics
    assert metrics["train_loss_last"] < metrics["train_loss_first"]
    assert 0 < metrics["trainable_parameters"] < metrics["total_parameters"]
    assert metrics["tokens_per_second"] > 0 and metrics["peak_memory_gb"] > 0
    loss = json.loads((artifacts["v1.train"] / "loss.json").read_text())
    assert [e["step"] for e in loss["train"]] == list(range(1, 9)) and loss["valid"][0]["step"] == 0
    samples = json.loads((artifacts["v1.train"] / "samples.json").read_text())
    assert samples and {"before", "after", "expected", "category"} <= set(samples[0])


def test_adapter_is_mlx_lm_format(lineage):
    from mlx_lm import load

    _, artifacts = lineage
    config = json.loads((artifacts["v2.train"] / "adapter_config.json").read_text())
    assert config["lora_parameters"]["keys"] == ["self_attn.q_proj", "self_attn.v_proj"] and config["num_layers"] == 1
    model, _ = load(str(artifacts["v1.fuse"]), adapter_path=str(artifacts["v2.train"]))
    assert model is not None


def test_fuse_keeps_every_non_language_tensor_bit_for_bit(lineage):
    import numpy as np

    _, artifacts = lineage
    base, fused = tensors(artifacts["base.source"]), tensors(artifacts["v1.fuse"])
    assert base.keys() == fused.keys()
    changed = {k for k in base if not np.array_equal(np.array(base[k]), np.array(fused[k]))}
    # v1 adapts attention + MLP of the last 2 of 3 layers: 7 projections x 2 layers, nothing else.
    assert changed == {
        f"language_model.model.layers.{i}.{p}.weight"
        for i in (1, 2)
        for p in (
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        )
    }
    vision = [k for k in base if k.startswith(("vision_tower.", "embed_vision."))]
    assert vision and all(np.array(base[k]).tobytes() == np.array(fused[k]).tobytes() for k in vision)
    audio = [k for k in base if k.startswith(("audio_tower.", "embed_audio."))]
    assert audio and all(np.array(base[k]).tobytes() == np.array(fused[k]).tobytes() for k in audio)


def test_fused_model_loads_in_mlx_vlm_and_matches_adapter_logits(lineage):
    import mlx.core as mx
    from mlx_lm import load as load_text
    from mlx_vlm import load

    project, artifacts = lineage
    metrics = project.state.load()["v2.fuse"].metrics
    assert metrics["max_projection_diff"] <= metrics["tolerance"] and metrics["vision_tower"]
    # what the stage checks projection by projection, checked here on the whole model: the logits
    reference, tokenizer = load_text(str(artifacts["v1.fuse"]), adapter_path=str(artifacts["v2.train"]))
    fused, _ = load_text(str(artifacts["v2.fuse"]))
    tokens = mx.array([tokenizer.encode("What is 17 * 23? Tell me about forging steel.")])
    assert mx.abs(reference(tokens) - fused(tokens)).max().item() < 1e-3
    model, processor = load(str(artifacts["v2.fuse"]))
    assert model.vision_tower is not None and processor is not None
    assert getattr(model, "audio_tower", None) is not None, "the audio tower loads, not disabled for want of weights"
    for shard in artifacts["v2.fuse"].glob("*.safetensors"):
        from safetensors import safe_open

        with safe_open(str(shard), "np") as f:
            assert f.metadata()["format"] == "mlx"


def test_base_and_fused_checkpoints_take_an_image_in_mlx_vlm(lineage, tmp_path):
    """VLM-aware end to end: mlx-vlm's own CLI reads an image into the vision tower's 16 soft tokens."""
    import re

    from PIL import Image

    _, artifacts = lineage
    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "red.png")

    def prompt_tokens(model: Path, *image: str) -> int:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlx_vlm",
                "generate",
                "--model",
                str(model),
                *image,
                "--prompt",
                "What colour?",
                "--max-tokens",
                "4",
                "--verbose",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return int(re.search(r"Prompt: (\d+) tokens", done.stdout).group(1))

    for stage in ("base.source", "v2.fuse"):
        with_image = prompt_tokens(artifacts[stage], "--image", str(tmp_path / "red.png"))
        # the image becomes <boi>, 16 soft tokens (a square image: the most there are), <eoi>
        assert with_image - prompt_tokens(artifacts[stage]) == 18


def test_v2_trains_on_v1_fused_weights(lineage):
    project, _ = lineage
    state = project.state.load()
    assert state["v2.train"].inputs == {
        "v1.fuse": state["v1.fuse"].fingerprint,
        "dataset.behavioral": state["dataset.behavioral"].fingerprint,
    }


def test_mlx_lm_fuse_drops_the_vision_tower_anvil_keeps_it(lineage, tmp_path):
    """Why the fuse stage exists: mlx-lm's own fuse writes a text-only checkpoint."""
    _, artifacts = lineage
    out = tmp_path / "mlx-lm-fused"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mlx_lm",
            "fuse",
            "--model",
            str(artifacts["base.source"]),
            "--adapter-path",
            str(artifacts["v1.train"]),
            "--save-path",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    theirs, ours = tensors(out), tensors(artifacts["v1.fuse"])
    assert not any(k.startswith("vision_tower.") for k in theirs)
    assert "vision_config" not in json.loads((out / "config.json").read_text())
    assert any(k.startswith("vision_tower.") for k in ours)


def test_a_killed_training_resumes_from_its_last_checkpoint(tmp_path):
    folder = make(tmp_path, steps=40)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "anvil", "apply", "--target", "v1.train"]
    proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    scratch = folder / ".anvil" / "scratch"
    while time.monotonic() < deadline and not list(scratch.glob("*/0000008_adapters.safetensors")):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # Its training child notices within the tether's poll (0.2 s) and may write one more checkpoint
    # meanwhile: look at the checkpoints only once it is gone.
    while time.monotonic() < deadline and any(
        str(folder) in " ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])
    ):
        time.sleep(0.05)
    assert list(scratch.glob("*/0000008_adapters.safetensors")), "training never reached its step-8 checkpoint"
    done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    metrics = open_project(folder / "anvil.toml").state.load()["v1.train"].metrics
    assert metrics["resumed_from_step"] >= 8
    loss = json.loads(next((folder / ".anvil" / "artifacts").glob("*/loss.json")).read_text())
    assert [e["step"] for e in loss["train"]] == list(range(1, 41)), "the curve spans both runs, once each step"


def test_sigterm_stops_the_training_child_and_records_nothing_half_done(tmp_path):
    import psutil

    folder = make(tmp_path, steps=40)
    proc = subprocess.Popen(
        [sys.executable, "-m", "anvil", "apply", "--target", "v1.train"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline, worker = time.monotonic() + 120, []
    while time.monotonic() < deadline and not worker:
        worker = [
            c for c in psutil.Process(proc.pid).children(recursive=True) if "lora_worker" in " ".join(c.cmdline())
        ]
        time.sleep(0.1)
    assert worker, "training started in a child process"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143 and "Traceback" not in proc.stderr.read()
    assert not psutil.pid_exists(worker[0].pid) or worker[0].status() == psutil.STATUS_ZOMBIE
    assert "v1.train" not in open_project(folder / "anvil.toml").state.load()


def train_until(folder: Path, checkpoint: int | None) -> None:
    """`anvil apply --target v1.train`, SIGKILLed once the step-`checkpoint` checkpoint exists (None: to the end)."""
    cmd = [sys.executable, "-m", "anvil", "apply", "--target", "v1.train"]
    if checkpoint is None:
        done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return
    proc = subprocess.Popen(cmd, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(folder.glob(f".anvil/scratch/*/{checkpoint:07d}_adapters.*")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # Its training child notices within the tether's poll (0.2 s) and may write one more checkpoint
    # meanwhile: look at the checkpoints only once it is gone.
    while time.monotonic() < deadline and any(
        str(folder) in " ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])
    ):
        time.sleep(0.05)


def adapter_digest(folder: Path) -> str:
    import hashlib

    project = open_project(folder / "anvil.toml")
    artifact = project.store.artifact(project.state.load()["v1.train"].fingerprint)
    return hashlib.sha256((artifact / "adapters.safetensors").read_bytes()).hexdigest()


def test_resumed_training_ends_with_the_same_adapter_byte_for_byte(tmp_path):
    whole = make(tmp_path / "whole", steps=40)
    train_until(whole, None)
    killed = make(tmp_path / "killed", steps=40)
    train_until(killed, 4)
    train_until(killed, 12)
    latest = max(killed.glob(".anvil/scratch/*/*_adapters.safetensors"))
    latest.write_bytes(latest.read_bytes()[:1000])  # as if a kill had cut the write short
    train_until(killed, None)
    resumed = open_project(killed / "anvil.toml").state.load()["v1.train"].metrics["resumed_from_step"]
    assert resumed == int(latest.name[:7]) - 4, "the torn checkpoint was skipped for the one before"
    assert adapter_digest(killed) == adapter_digest(whole)


def test_path_source_uses_a_local_checkpoint_in_place(lineage, tmp_path):
    _, artifacts = lineage
    checkpoint = artifacts["v1.fuse"]
    (tmp_path / "data").mkdir()
    shutil.copy(REPO / "data" / "voice.jsonl", tmp_path / "data" / "voice.jsonl")
    (tmp_path / "anvil.toml").write_text(
        f'[project]\nname = "p"\n\n[models.base]\nsource = "path:{checkpoint}"\n\n'
        '[models.v1]\nparent = "base"\ndataset = "d"\nlora = { rank = 2, last_layers = 1 }\n'
        "train = { steps = 2, batch_size = 2, max_seq_length = 64, val_batches = 1 }\n\n"
        '[datasets.d]\nsources = [{ path = "data/voice.jsonl", category = "voice" }]\nvalid_fraction = 0.2\n'
    )
    project = open_project(tmp_path / "anvil.toml")
    project.apply(project.plan(targets=["v1.train"]))
    state = project.state.load()
    pointer = json.loads((project.store.artifact(state["base.source"].fingerprint) / "source.json").read_text())
    assert pointer["path"] == str(checkpoint), "a local checkpoint is used where it is, never copied"
    assert state["v1.train"].metrics["train_loss_first"] > 0


def test_hub_source_offline_says_how_to_provide_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    (tmp_path / "anvil.toml").write_text(
        '[project]\nname = "h"\n\n[models.base]\nsource = "hf:google/gemma-4-31b-it"\n'
    )
    done = subprocess.run([sys.executable, "-m", "anvil", "apply"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "hf:google/gemma-4-31b-it: cannot download the weights" in done.stderr
    assert 'source = "path:DIR"' in done.stderr


def test_quantized_checkpoints_are_refused(tmp_path):
    from anvil.backends.fuse import fuse
    from anvil.errors import AnvilError

    (tmp_path / "config.json").write_text(json.dumps({"quantization": {"bits": 4, "group_size": 64}}))
    with pytest.raises(AnvilError, match="quantized checkpoints are refused"):
        fuse(tmp_path, tmp_path, tmp_path / "out")


ORPO_ROUND = """
[models.v3]
parent = "v2"
method = "orpo"
dataset = "unknowable"
lora = { rank = 4, last_layers = 2 }
train = { steps = 6, batch_size = 2, learning_rate = 2e-3, max_seq_length = 128, val_interval = 3, val_batches = 2, checkpoint_interval = 3 }
preference = { beta = 0.2 }

[datasets.unknowable]
format = "preference"
valid_fraction = 0.25
sources = [{ path = "data/preference/unknowable.jsonl", category = "edge_cases", count = 16 }]
"""


def test_an_orpo_round_trains_on_top_of_the_lineage_and_fuses(lineage):
    """A preference round beside the lineage, in its store: v1 and v2 are restored, v3 trains by ORPO (no
    reference model), records its held-out margins, and fuses into a checkpoint mlx-vlm loads."""
    project, artifacts = lineage
    folder = project.loaded.root
    (folder / "orpo.toml").write_text(SMALL.replace("STEPS", "8") + ORPO_ROUND)
    done = subprocess.run(
        [sys.executable, "-m", "anvil", "apply", "orpo.toml"], cwd=folder, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    orpo = open_project(folder / "orpo.toml")
    state = orpo.state.load()
    assert state["v2.train"].fingerprint == project.state.load()["v2.train"].fingerprint
    assert not (orpo.state.logs / "v2.train.trainer.log").exists(), "v2 came from the run-cache"
    m = state["v3.train"].metrics
    assert m["method"] == "orpo" and m["steps"] == 6 and m["margin_after"] > m["margin_before"], m
    assert state["v3.train"].config["preference"] == {
        "beta": 0.2,
        "loss_type": "sigmoid",
        "delta": 50.0,
        "reference": "parent",
    }
    from mlx_vlm.utils import load_config

    fused = orpo.store.artifact(state["v3.fuse"].fingerprint)
    assert load_config(fused)["model_type"] == "gemma4" and state["v3.fuse"].metrics["merged_modules"] > 0


def test_an_exported_release_loads_in_mlx_vlm_and_its_adapter_in_mlx_lm(lineage, tmp_path):
    from mlx_lm import load as load_text
    from mlx_vlm import load

    project, artifacts = lineage
    shown = subprocess.run(
        [sys.executable, "-m", "anvil", "export", "v2", str(tmp_path / "v2")],
        capture_output=True,
        text=True,
        cwd=project.loaded.root,
    )
    assert shown.returncode == 0 and "Exported v2 to" in shown.stdout, shown.stderr
    model, processor = load(str(tmp_path / "v2"))
    assert model.vision_tower is not None and processor is not None
    assert (tmp_path / "v2" / "model.safetensors").read_bytes() == (
        artifacts["v2.fuse"] / "model.safetensors"
    ).read_bytes()
    shown = subprocess.run(
        [sys.executable, "-m", "anvil", "export", "v2", str(tmp_path / "adapter"), "--adapter", "--json"],
        capture_output=True,
        text=True,
        cwd=project.loaded.root,
    )
    assert shown.returncode == 0, shown.stderr
    assert "adapters.safetensors" in json.loads(shown.stdout)["files"]
    model, tokenizer = load_text(str(artifacts["v1.fuse"]), adapter_path=str(tmp_path / "adapter"))
    assert model is not None and tokenizer is not None


TRAINED_BY_HAND = """\
import runpy, sys
import mlx.core as mx
info = mx.device_info  # mlx-lm-lora asks Metal's working-set size, which a CPU does not report
mx.device_info = lambda: {"max_recommended_working_set_size": 1 << 34, **info()}
sys.argv[0] = sys.argv.pop(1)
runpy.run_module(sys.argv[0], run_name="__main__")
"""


def test_an_adapter_trained_by_hand_is_imported_and_the_lineage_builds_on_it(tmp_path):
    """v1's adapter trained outside Anvil (mlx-lm's trainer, its documented format), imported: v1.train is up
    to date, the rest of the lineage builds on it; a rank that differs is refused by field, and an adapter
    of every linear layer (mlx-lm-lora's CLI, which takes no `keys`) by its modules."""
    folder = make(tmp_path / "hand")

    def anvil(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "anvil", *args], cwd=folder, capture_output=True, text=True)

    assert anvil("apply", "--target", "base", "--target", "dataset.domain").returncode == 0
    project = open_project(folder / "anvil.toml")
    base = project.weights("base")
    data = project.store.artifact(project.state.load()["dataset.domain"].fingerprint)
    keys = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"]
    keys += ["mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]  # the recipe's default targets, attention + mlp

    def train(trainer: str, out: Path, **lora) -> None:
        config = tmp_path / f"{out.name}.yaml"  # YAML is a superset of JSON
        config.write_text(json.dumps({"lora_parameters": {"scale": 10.0, "dropout": 0.0, **lora}}))
        (tmp_path / "by_hand.py").write_text(TRAINED_BY_HAND)
        done = subprocess.run(
            [sys.executable, str(tmp_path / "by_hand.py"), trainer, "--model", str(base), "--train"]
            + ["--data", str(data), "--iters", "4", "--batch-size", "2", "--num-layers", "2", "--max-seq-length"]
            + ["128", "--val-batches", "1", "--steps-per-eval", "100", "--adapter-path", str(out), "-c", str(config)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    train("mlx_lm.lora", tmp_path / "rank8", rank=8, keys=keys)
    refused = anvil("import", "v1", str(tmp_path / "rank8"))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "lora_parameters.rank: the recipe's models.v1.lora.rank is 4, the file's is 8" in refused.stderr
    train("mlx_lm_lora.train", tmp_path / "every_linear", rank=4)
    refused = anvil("import", "v1.train", str(tmp_path / "every_linear"))
    assert refused.returncode == 1 and "per_layer_input_gate" in refused.stderr, refused.stderr
    assert "v1.train" not in open_project(folder / "anvil.toml").state.load(), "nothing recorded"

    train("mlx_lm.lora", tmp_path / "adapter", rank=4, keys=keys)
    dry = anvil("import", "v1", str(tmp_path / "adapter"), "--dry-run")
    assert dry.returncode == 0 and "Would record v1.train" in dry.stdout and "Nothing was recorded" in dry.stdout
    done = anvil("import", "v1", str(tmp_path / "adapter"))
    assert done.returncode == 0 and "Recorded v1.train as imported" in done.stdout, done.stderr
    acts = {a["stage"]: a["act"] for a in json.loads(anvil("plan", "--json").stdout)["actions"]}
    assert acts["v1.train"] == "up_to_date" and acts["v1.fuse"] == "create" and acts["v2.train"] == "create"
    imported = open_project(folder / "anvil.toml").state.load()["v1.train"]
    assert set(imported.inputs) == {"base.source", "dataset.domain"}, "recorded with what it was checked against"
    again = anvil("import", "v1", str(tmp_path / "adapter"))
    assert again.returncode == 1 and "v1.train is built" in again.stderr
    applied = anvil("apply")
    assert applied.returncode == 0, applied.stdout[-2000:] + applied.stderr[-2000:]
    state = open_project(folder / "anvil.toml").state.load()
    assert state["v1.fuse"].metrics["parity"]["verdict"] == "within tolerance" and "v2.fuse" in state
    status = {row["stage"]: row for row in json.loads(anvil("status", "--json").stdout)}
    assert status["v1.train"]["summary"].startswith(f"imported from {tmp_path / 'adapter'} on ")
    page = (project.state.folder / "report.html").read_text()
    assert 'data-metric="imported:v1"' in page

    # the same recipe elsewhere: the adapter and the fused checkpoint exported from here, both imported
    assert anvil("export", "v1", str(tmp_path / "v1")).returncode == 0
    other = make(tmp_path / "other")

    def elsewhere(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "anvil", *args], cwd=other, capture_output=True, text=True)

    early = elsewhere("import", "v1.fuse", str(tmp_path / "v1"))
    assert early.returncode == 1 and "v1.train, not built (import v1.train, or build it" in early.stderr, early.stderr
    assert elsewhere("apply", "--target", "base", "--target", "dataset.domain").returncode == 0
    assert elsewhere("import", "v1", str(tmp_path / "adapter")).returncode == 0
    text_only = elsewhere("import", "v1.fuse", str(tmp_path / "every_linear"))  # mlx-lm-lora's fuse drops towers
    assert text_only.returncode == 1 and "tensor(s) missing: audio_tower" in text_only.stderr, text_only.stderr
    fused = elsewhere("import", "v1.fuse", str(tmp_path / "v1"))
    assert fused.returncode == 0 and "served = trained: max |dlogit|" in fused.stdout, fused.stderr
    acts = {a["stage"]: a["act"] for a in json.loads(elsewhere("plan", "--json").stdout)["actions"]}
    assert acts["v1.fuse"] == "up_to_date" and acts["v2.train"] == "create"
