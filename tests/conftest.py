from __future__ import annotations

import http.server
import json
import textwrap
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def chat_row(user: str, answer: str) -> str:
    return json.dumps({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]})


LINEAGE = """\
[project]
name = "t"

[models.base]
source = "synthetic:tiny"
synthetic = { hidden_size = 32, num_layers = 2 }

[models.v1]
parent = "base"
dataset = "domain"
lora = { rank = 4, last_layers = 2 }
train = { steps = 10, learning_rate = 2e-05 }

[models.v2]
parent = "v1"
dataset = "behavioral"
lora = { rank = 4, last_layers = 2 }
train = { steps = 10, learning_rate = 2e-05 }

[datasets.domain]
sources = [{ path = "data/domain.jsonl", category = "domain" }]

[datasets.behavioral]
valid_fraction = 0.25
sources = [
  { path = "data/a.jsonl", category = "a", count = 6 },
  { path = "data/b.jsonl", category = "b", count = 2 },
]
"""


DATA_ONLY = LINEAGE[: LINEAGE.index("[models.base]")] + LINEAGE[LINEAGE.index("[datasets.domain]") :]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No test sees the developer's store settings or writes outside its own folder."""
    monkeypatch.delenv("ANVIL_STORE", raising=False)
    monkeypatch.delenv("ANVIL_REMOTE", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def data_dir(project_dir) -> Path:
    """A data-only recipe: two datasets, no model, so applying it is fast."""
    (project_dir / "anvil.toml").write_text(DATA_ONLY)
    return project_dir


@pytest.fixture
def project_dir(tmp_path) -> Path:
    """A recipe with a three-model lineage and two datasets, with its data files."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "domain.jsonl").write_text("".join(chat_row(f"q{i}", f"a{i}") + "\n" for i in range(10)))
    (tmp_path / "data" / "a.jsonl").write_text("".join(chat_row(f"x{i}", f"y{i}") + "\n" for i in range(8)))
    (tmp_path / "data" / "b.jsonl").write_text("".join(chat_row(f"m{i}", f"n{i}") + "\n" for i in range(4)))
    (tmp_path / "anvil.toml").write_text(LINEAGE)
    return tmp_path


@contextmanager
def chat_endpoint(content: Callable[[dict], str], status: Callable[[int], int] = lambda n: 200):
    """An OpenAI-compatible chat-completions endpoint on loopback whose reply to a request body is
    `content(body)`, with HTTP status `status(number of the request)`; yields (port, the requests it
    answered, each as {"path", "headers", "body"})."""
    requests: list[dict] = []

    class Endpoint(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            code = status(len(requests))
            if body.get("stream") and code == 200:
                return self.stream(content(body))
            answer = {"choices": [{"message": {"role": "assistant", "content": content(body)}}]}
            data = json.dumps(answer if code == 200 else {"error": {"message": content(body)}}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def stream(self, text: str):
            """Server-sent events as OpenAI streams them, a few characters per chunk, until the client goes."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            chunks = [text[i : i + 3] for i in range(0, len(text), 3)]
            events = [{"choices": [{"delta": {"content": c}}]} for c in chunks]
            try:
                for event in events:
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
            except OSError:
                pass  # the client hung up at a stop sequence

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port, requests
    finally:
        server.shutdown()


def stage_record(sid: str, kind: str, **fields):
    """A StageRecord as a state holds one, with what a test sets and the rest empty."""
    from anvil.planning.record import StageRecord

    empty = {"fingerprint": "f", "code_version": 1, "config": {}, "inputs": {}, "files": {}, "outputs": ""}
    return StageRecord.model_validate({"id": sid, "kind": kind, **empty, "started": "", "duration_s": 0.0} | fields)


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="session", autouse=True)
def _no_orphan_servers(tmp_path_factory):
    """Whatever a failing test leaves behind, no server started from a test folder outlives the session."""
    yield
    import contextlib
    import os
    import signal

    import psutil

    base = str(tmp_path_factory.getbasetemp())
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        if any("mlx_vlm.server" in a for a in argv) and any(base in a for a in argv):
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)  # the server leads its own group: its children go too


def serve_models_from(monkeypatch, port: int) -> None:
    """Every model a generating stage (transcripts, knowledge) would serve is answered by the endpoint on
    `port` instead: the real stages, without MLX."""
    import os

    from anvil.backends.process import Owned
    from anvil.backends.server import Server
    from anvil.stages import transcripts

    @contextmanager
    def model_server(ctx, max_tokens, kv_cache):
        yield Server(Owned(os.getpid(), 0.0, "here"), "127.0.0.1", port, None, ctx.node.model)

    monkeypatch.setattr(transcripts, "model_server", model_server)


def apply_without_mlx(folder: Path, fake: dict | None = None, **plan_args):
    """Apply with stand-ins for the stages that need MLX (the synthetic model; `fake` names more, by kind,
    with their metrics); every other stage is the real one. Returns the plan's actions and the state."""
    from anvil.project import open_project

    project = open_project(folder / "anvil.toml")
    plan = project.plan(**plan_args)
    real = project.run_stage()
    fake = {"source": {}, **(fake or {})}

    def run(action, workdir, inputs):
        if action.kind in fake:
            if workdir is not None:
                (workdir / "config.json").write_text("{}")
            stand_in = fake[action.kind]  # metrics, or a function of the work folder that returns them
            return stand_in(workdir) if callable(stand_in) else stand_in
        return real(action, workdir, inputs)

    project.apply(plan, run_stage=run)
    return {a.stage: a for a in plan.actions}, open_project(folder / "anvil.toml").state.load()
