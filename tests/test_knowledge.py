"""The knowledge stage for real (its servers stood in for by a loopback endpoint): the same items for
every model, graded and compared item by item; records independent of the concurrency; an interrupted
run finishing only what is missing; a gate on a knowledge metric keeping a model from being served."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import REPO, apply_without_mlx, chat_endpoint, serve_models_from

RECIPE = """\
[project]
name = "knowing"

[models.base]
source = "synthetic:tiny"

[models.v1]
parent = "base"
dataset = "d"
lora = {{ last_layers = 2 }}

[datasets.d]
sources = [{{ path = "data/voice.jsonl", category = "voice" }}]

[eval]
compare = ["base", "v1"]
concurrency = {concurrency}
knowledge = [
  {{ benchmark = "gsm8k_cot", data = "path:gsm8k.jsonl", n = 6, max_tokens = 16 }},
  {{ benchmark = "mmlu_pro", data = "path:mmlu_pro.jsonl", n = 4, max_tokens = 16 }},
]

[[gates]]
model = "v1"
metric = "knowledge.gsm8k_cot.delta_vs_base.ci_low"
min = {gate}

[serve]
model = "v1"
"""


def answer(body: dict) -> str:
    """v1 knows every GSM8K answer, base none; both pick B on MMLU-Pro."""
    question = body["messages"][-1]["content"].rsplit("Q: ", 1)[-1]
    if body["model"] == "v1" and question in ANSWERS:
        return f"Let me think. The answer is {ANSWERS[question]}.\n\nQ: and more"
    return "I am not sure. The answer is (B)."


ANSWERS: dict[str, str] = {}


def make(folder, concurrency: int = 1, gate: float = 0.0):
    folder.mkdir(exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    shutil.copy(REPO / "data" / "voice.jsonl", folder / "data")
    rows = (REPO / "evals/knowledge/gsm8k/test.jsonl").read_text().splitlines()
    for row in map(json.loads, rows):
        ANSWERS[f"{row['question']}\nA:"] = row["answer"].split("####")[-1].strip()
    (folder / "gsm8k.jsonl").write_text("\n".join(rows) + "\n")
    shutil.copy(REPO / "evals/knowledge/mmlu_pro/test.jsonl", folder / "mmlu_pro.jsonl")
    (folder / "anvil.toml").write_text(RECIPE.format(concurrency=concurrency, gate=gate))
    return folder


# No MLX here: the weights and the served process are stand-ins; the knowledge and gate stages are real.
SERVED = {"pid": 0, "process": {"pid": 0, "started": 0.0, "host": "elsewhere"}, "host": "127.0.0.1", "port": 1,
          "url": "http://127.0.0.1:1", "model": "v1"}  # fmt: skip
FAKE = {"train": {}, "fuse": {}, "serve": SERVED}


def results(folder, model: str) -> dict:
    from anvil.project import open_project

    return open_project(folder / "anvil.toml").eval_results(model)["knowledge"]


def test_paired_items_grades_and_deltas(tmp_path, monkeypatch):
    with chat_endpoint(answer) as (port, requests):
        serve_models_from(monkeypatch, port)
        _, state = apply_without_mlx(make(tmp_path / "p"), FAKE)
    mine, base = results(tmp_path / "p", "v1"), results(tmp_path / "p", "base")
    assert [i["key"] for i in mine["gsm8k_cot"]["items"]] == [i["key"] for i in base["gsm8k_cot"]["items"]]
    gsm8k = mine["gsm8k_cot"]
    assert gsm8k["score"] == 1.0 and gsm8k["scores"] == {"flexible": 1.0, "strict": 1.0}
    assert all(not i["response"].endswith("and more") for i in gsm8k["items"]), "cut at the stop sequence"
    delta = gsm8k["delta_vs_base"]
    assert delta["delta"] == 1.0 and delta["score"] == 0.0 and delta["p_value"] == pytest.approx(2 / 64, abs=1e-4)
    assert "mmlu_pro_0shot" in mine and "mmlu_pro" not in mine, "without exemplars the metric says 0-shot"
    assert state["v1.gate"].outcome.value == "ok" and state["v1.knowledge"].metrics["benchmarks"]["gsm8k_cot"]["n"] == 6


def test_records_do_not_depend_on_the_concurrency(tmp_path, monkeypatch):
    artifacts = []
    for concurrency in (1, 4):
        with chat_endpoint(answer) as (port, _):
            serve_models_from(monkeypatch, port)
            folder = make(tmp_path / f"c{concurrency}", concurrency=concurrency)
            _, state = apply_without_mlx(folder, FAKE)
        artifacts.append(
            (folder / ".anvil" / "artifacts" / state["v1.knowledge"].fingerprint / "results.json").read_bytes()
        )
    assert artifacts[0] == artifacts[1]


def test_an_interrupted_run_generates_only_what_is_missing(tmp_path, monkeypatch):
    from anvil.errors import StageFailed

    folder = make(tmp_path / "i")
    with chat_endpoint(answer, status=lambda n: 200 if n <= 4 else 500) as (port, requests):
        serve_models_from(monkeypatch, port)
        with pytest.raises(StageFailed):
            apply_without_mlx(folder, FAKE)
    assert len(list(folder.glob(".anvil/scratch/*/gsm8k_cot.*.json"))) == 4, "the answers before the failure"
    with chat_endpoint(answer) as (port, requests):
        serve_models_from(monkeypatch, port)
        apply_without_mlx(folder, FAKE)
    assert len(requests) == 2 * 10 - 4, "the 4 finished items were kept"


def test_a_knowledge_gate_blocks_promotion(tmp_path, monkeypatch):
    with chat_endpoint(answer) as (port, _):
        serve_models_from(monkeypatch, port)
        actions, state = apply_without_mlx(make(tmp_path / "g", gate=0.99), FAKE)
    assert state["v1.gate"].outcome.value == "failed" and "serve" not in state
    [failure] = state["v1.gate"].metrics["failures"]
    assert failure["metric"] == "knowledge.gsm8k_cot.delta_vs_base.ci_low" and failure["value"] < 0.99
