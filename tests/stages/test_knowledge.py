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
metric = "knowledge.gsm8k_cot_max16.delta_vs_base.ci_low"
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
SERVED = {
    "pid": 0,
    "process": {"pid": 0, "started": 0.0, "host": "elsewhere"},
    "host": "127.0.0.1",
    "port": 1,
    "url": "http://127.0.0.1:1",
    "model": "v1",
}
FAKE = {"train": {}, "fuse": {}, "serve": SERVED}


def results(folder, model: str) -> dict:
    """A model's knowledge results as `eval show --json` prints them."""
    from anvil.commands.eval_show import eval_results
    from anvil.project import open_project

    found = eval_results(open_project(folder / "anvil.toml"), model)["knowledge"]
    return {name: b.model_dump(mode="json") for name, b in found.items()}


def test_paired_items_grades_and_deltas(tmp_path, monkeypatch):
    with chat_endpoint(answer) as (port, requests):
        serve_models_from(monkeypatch, port)
        _, state = apply_without_mlx(make(tmp_path / "p"), FAKE)
    mine, base = results(tmp_path / "p", "v1"), results(tmp_path / "p", "base")
    assert set(mine) == {"gsm8k_cot_max16", "mmlu_pro_0shot_max16"}, "a departure from the protocol says so"
    gsm8k = mine["gsm8k_cot_max16"]
    assert [i["key"] for i in gsm8k["items"]] == [i["key"] for i in base["gsm8k_cot_max16"]["items"]]
    assert gsm8k["score"] == 1.0 and gsm8k["scores"] == {"flexible": 1.0, "strict": 1.0}
    assert all(not i["response"].endswith("and more") for i in gsm8k["items"]), "cut at the stop sequence"
    delta = gsm8k["delta_vs_base"]
    assert delta["delta"] == 1.0 and delta["score"] == 0.0 and delta["p_value"] == pytest.approx(2 / 64, abs=1e-4)
    sent = [r["body"] for r in requests if "Q: " in r["body"]["messages"][-1]["content"]]
    assert all(b["stream"] and b["stop"] == ["Q:", "</s>", "<|im_end|>"] for b in sent), "the protocol's stops sent"
    mmlu = mine["mmlu_pro_0shot_max16"]
    subjects = {json.loads(row)["category"] for row in (REPO / "evals/knowledge/mmlu_pro/test.jsonl").open()}
    assert mmlu["groups"] and set(mmlu["groups"]) <= subjects, "lm-eval's sub-scores: MMLU-Pro by subject"
    assert sum(g["n"] for g in mmlu["groups"].values()) == mmlu["n"] == 4 and mmlu["stderrs"]["custom"] is not None
    assert state["v1.gate"].outcome.value == "ok"
    assert state["v1.knowledge"].metrics["benchmarks"]["gsm8k_cot_max16"]["n"] == 6


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
    assert len(list(folder.glob(".anvil/scratch/*/*.json"))) == 4, "the answers before the failure"
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
    assert failure["metric"] == "knowledge.gsm8k_cot_max16.delta_vs_base.ci_low" and failure["value"] < 0.99


FORGING = [json.loads(row) for row in (REPO / "evals/knowledge/forging/test.jsonl").read_text().splitlines()]


def forging_answer(body: dict) -> str:
    """v1 knows every forging fact, base none; lm-eval's chat form sends the system prompt as its own turn."""
    turns = body["messages"]
    row = next(r for r in FORGING if r["question"] == turns[-1]["content"])
    assert turns[0] == {"role": "system", "content": row["system"]}, turns
    return f"{row['answer']}\nand more" if body["model"] == "v1" else "No idea."


def test_an_lm_eval_task_is_a_knowledge_benchmark(tmp_path, monkeypatch):
    """The forging benchmark as an lm-eval task file: lm-eval builds the prompts and grades the answers, the
    stage pairs the models item by item and keeps every answer in its scratch folder."""
    pytest.importorskip("lm_eval")
    folder = make(tmp_path / "t")
    shutil.copytree(REPO / "evals/knowledge/forging", folder / "forging")
    recipe = (folder / "anvil.toml").read_text()
    start, end = recipe.index("knowledge = ["), recipe.index("[[gates]]")
    task = 'knowledge = [{ task = "forging/forging.yaml", n = 12, chat = "system_header" }]\n\n'
    gate = 'metric = "knowledge.forging_system.delta_vs_base.ci_low"'
    recipe = (
        recipe[:start] + task + recipe[end:].replace('metric = "knowledge.gsm8k_cot_max16.delta_vs_base.ci_low"', gate)
    )
    (folder / "anvil.toml").write_text(recipe)
    with chat_endpoint(forging_answer) as (port, requests):
        serve_models_from(monkeypatch, port)
        _, state = apply_without_mlx(folder, FAKE)
    mine, base = results(folder, "v1")["forging_system"], results(folder, "base")["forging_system"]
    assert mine["lm_eval_task"] == "forging" and mine["filter"] == "exact"
    assert mine["score"] == 1.0 and base["score"] == 0.0 and mine["n"] == 12
    assert [i["key"] for i in mine["items"]] == [i["key"] for i in base["items"]], "paired by document"
    assert all(i["response"] == i["extracted"]["exact"] for i in mine["items"]), "cut at the task's stop"
    delta = mine["delta_vs_base"]
    assert delta["delta"] == 1.0 and delta["p_value"] == pytest.approx(2 / 2**12, abs=1e-6)
    assert all(r["body"]["stop"] == ["\n"] for r in requests), "the task's `until` sent"
    assert len(requests) == 24 and state["v1.gate"].outcome.value == "ok"
    assert len(list(folder.glob(".anvil/scratch/*/*.json"))) == 0, "the scratch folder goes with the stage"


def test_a_stop_sequence_ends_the_generation_instead_of_the_token_budget():
    """A server that ignores OpenAI's `stop` (mlx-vlm's) streams on; the client hangs up at the stop
    sequence, even one split across chunks, and the server's next writes fail: it stops generating."""
    import http.server
    import threading

    from anvil.backends.openai_api import chat_until

    ended = threading.Event()

    class Endless(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            pieces = ["The answer", " is 4.\n\nQ", ":", " next"] + [" more"] * 10**6
            try:
                for piece in pieces:
                    self.wfile.write(f"data: {json.dumps({'choices': [{'delta': {'content': piece}}]})}\n\n".encode())
                    self.wfile.flush()
            except OSError:
                ended.set()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        text, stopped, _ = chat_until(f"http://127.0.0.1:{server.server_port}/v1", {"messages": []}, {}, 10, ("Q:",))
        assert (text, stopped) == ("The answer is 4.\n\n", True)
        assert ended.wait(10), "the client hung up: the server could not go on"
    finally:
        server.shutdown()


def test_excluding_the_server_leaves_a_plan_that_runs_and_a_recorded_report(tmp_path, monkeypatch):
    with chat_endpoint(answer) as (port, _):
        serve_models_from(monkeypatch, port)
        actions, state = apply_without_mlx(make(tmp_path / "x"), FAKE, exclude=["serve"])
    assert "serve" not in actions and "serve" not in state
    assert state["report"].outcome.value == "ok" and "serve" not in state["report"].inputs
