"""Serving for real: mlx-vlm's server on a free loopback port, the real `openai` client, the server
reconciled by plan/apply like a resource, and always stopped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai
import pytest

from anvil.backends.process import alive
from anvil.backends.server import free_port, healthy
from anvil.planning.plan import Act
from anvil.project import open_project
from anvil.stages.serve import server_of

pytestmark = pytest.mark.e2e

RECIPE = """\
[project]
name = "served"

[models.base]
source = "synthetic:served"
synthetic = {{ hidden_size = 32, intermediate_size = 64, num_layers = 2, num_heads = 2, head_dim = 16, vocab_size = 320 }}

[serve]
model = "base"
port = {port}
max_tokens = {max_tokens}
kv_cache = {{ quantization = "turboquant", bits = 4 }}
{extra}
"""


def write(folder: Path, port: int, max_tokens: int = 64, extra: str = "") -> Path:
    (folder / "anvil.toml").write_text(RECIPE.format(port=port, max_tokens=max_tokens, extra=extra))
    return folder / "anvil.toml"


def apply(recipe: Path):
    project = open_project(recipe)
    plan = project.plan()
    project.apply(plan)
    return plan, open_project(recipe)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    recipe = write(folder, free_port())
    apply(recipe)
    project = open_project(recipe)
    yield recipe, project
    open_project(recipe).down()


def client(project) -> tuple[openai.OpenAI, str]:
    record = project.state.load()["serve"]
    return openai.OpenAI(base_url=record.metrics["url"] + "/v1", api_key="unused"), record.metrics["model"]


def test_apply_starts_the_server_and_records_it(served):
    recipe, project = served
    record = project.state.load()["serve"]
    assert alive(record.metrics["pid"]) and healthy(server_of(record))
    assert record.inputs == {"base.source": project.state.load()["base.source"].fingerprint}
    assert 0 <= record.metrics["validation_agreement"] <= 1 and record.metrics["validation_prompts"] == 5
    assert not open_project(recipe).plan().changes


def test_openai_client_plain_streaming_and_tools(served):
    _, project = served
    api, model = client(project)
    reply = api.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello"}], max_tokens=8, temperature=0
    )
    assert reply.choices[0].message.role == "assistant" and reply.usage.completion_tokens >= 1
    chunks = list(
        api.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=8, temperature=0, stream=True
        )
    )
    assert len(chunks) >= 2 and any(c.choices and c.choices[0].delta.content for c in chunks)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "calculator",
                "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
            },
        }
    ]
    with_tools = api.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "What is 2+2?"}], tools=tools, max_tokens=8, temperature=0
    )
    assert with_tools.choices[0].finish_reason in ("stop", "length", "tool_calls")
    # The synthetic chat template renders tool calls as <tool_call>{json}</tool_call>, which mlx-vlm
    # recognises: the server parses such output into OpenAI tool_calls.
    import urllib.request

    health = json.loads(urllib.request.urlopen(project.state.load()["serve"].metrics["url"] + "/health").read())
    assert health["loaded_tool_parser"] == "json_tools"
    assert [m.id for m in api.models.list().data] == ["base"], "clients name the model by its node, not a store path"


def test_bad_requests_get_http_errors(served):
    _, project = served
    api, model = client(project)
    with pytest.raises(openai.BadRequestError):
        api.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}], max_tokens=2)
    url = project.state.load()["serve"].metrics["url"]
    done = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Content-Type: application/json",
            "-d",
            "{not json",
            f"{url}/v1/chat/completions",
        ],
        capture_output=True,
        text=True,
    )
    assert done.stdout == "422"


def test_a_dead_server_is_planned_and_restarted(served):
    recipe, project = served
    pid = project.state.load()["serve"].metrics["pid"]
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    plan, after = apply(recipe)
    [action] = [a for a in plan.actions if a.stage == "serve"]
    assert action.line() == f"~ serve: server process {pid} is not running"
    new = after.state.load()["serve"].metrics["pid"]
    assert new != pid and healthy(server_of(after.state.load()["serve"]))


def test_an_option_change_restarts_and_a_busy_port_is_a_clear_error(served, tmp_path):
    recipe, project = served
    old = project.state.load()["serve"]
    write(recipe.parent, old.metrics["port"], max_tokens=32)
    plan, after = apply(recipe)
    assert [a.line() for a in plan.actions if a.stage == "serve"] == ["~ serve: max_tokens 64 -> 32"]
    assert not alive(old.metrics["pid"]) and after.state.load()["serve"].metrics["pid"] != old.metrics["pid"]

    other = tmp_path / "other"
    other.mkdir()
    busy = write(other, old.metrics["port"])
    done = subprocess.run(
        [sys.executable, "-m", "anvil", "apply"], cwd=other, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    port = old.metrics["port"]
    assert f"port {port} on 127.0.0.1 is already in use by the server Anvil runs for {recipe.resolve()}" in done.stderr
    assert f"`anvil down {recipe.resolve()}` stops it" in done.stderr and "set another `[serve] port`" in done.stderr
    # ... and the apply still ends with its summary and says that nothing of its own is served
    assert "Dashboard: " in done.stdout and done.stdout.rstrip().endswith("Serving nothing.")
    assert busy.exists()


def test_a_copy_never_stops_the_original_and_a_busy_new_port_keeps_the_server(served, tmp_path):
    recipe, project = served
    running = project.state.load()["serve"]
    max_tokens = running.config["max_tokens"]
    copy = tmp_path / "copy"  # `cp -a` of the served project, set to another port
    shutil.copytree(recipe.parent, copy)
    write(copy, free_port(), max_tokens=max_tokens)
    done = subprocess.run([sys.executable, "-m", "anvil", "apply"], cwd=copy, capture_output=True, text=True)
    try:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert alive(running.metrics["pid"]) and healthy(server_of(running)), "the original's server still serves"
    finally:
        open_project(copy / "anvil.toml").down()
    with socket.socket() as taken:  # the new port is held by something else: the running server is kept
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        write(recipe.parent, taken.getsockname()[1], max_tokens=max_tokens)
        done = subprocess.run(
            [sys.executable, "-m", "anvil", "apply"], cwd=recipe.parent, capture_output=True, text=True
        )
    write(recipe.parent, running.metrics["port"], max_tokens=max_tokens)
    assert done.returncode == 1 and "keeps serving" in done.stderr, done.stderr[-2000:]
    assert alive(running.metrics["pid"]) and healthy(server_of(running))
    assert [a.act for a in open_project(recipe).plan().actions if a.stage == "serve"] == [Act.UP_TO_DATE]


def test_served_settings_changed_by_a_client_are_drift_that_apply_corrects(served):
    recipe, project = served
    record = project.state.load()["serve"]
    assert record.metrics["settings"]["kv_bits"] == 4
    request = urllib.request.Request(
        record.metrics["url"] + "/v1/settings", data=json.dumps({"kv_bits": 2}).encode(), method="PATCH"
    )
    request.add_header("Content-Type", "application/json")
    urllib.request.urlopen(request, timeout=10).read()
    plan, after = apply(recipe)
    [action] = [a for a in plan.actions if a.stage == "serve"]
    line = action.line()
    assert line.startswith(
        "~ serve: its runtime settings were changed since it started (PATCH /v1/settings): kv_bits 4"
    )
    assert line.endswith("-> 2") or line.endswith("-> 2.0"), line
    assert after.state.load()["serve"].metrics["settings"]["kv_bits"] == 4
    assert not open_project(recipe).plan().changes


def test_api_key_is_required_when_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("ANVIL_TEST_KEY", "s3cret")
    recipe = write(tmp_path, free_port(), extra='api_key_env = "ANVIL_TEST_KEY"')
    apply(recipe)
    project = open_project(recipe)
    try:
        metrics = project.state.load()["serve"].metrics
        denied = openai.OpenAI(base_url=metrics["url"] + "/v1", api_key="wrong")
        with pytest.raises(openai.AuthenticationError):
            denied.chat.completions.create(model=metrics["model"], messages=[{"role": "user", "content": "x"}])
        allowed = openai.OpenAI(base_url=metrics["url"] + "/v1", api_key="s3cret")
        reply = allowed.chat.completions.create(
            model=metrics["model"], messages=[{"role": "user", "content": "x"}], max_tokens=2
        )
        assert reply.choices
    finally:
        assert project.down() == ["serve"]
    assert not alive(metrics["pid"])
    assert (
        "+ serve"
        in subprocess.run(
            [sys.executable, "-m", "anvil", "plan"], cwd=tmp_path, capture_output=True, text=True, env={**os.environ}
        ).stdout
    )


def test_anvil_serve_runs_in_the_foreground_and_ctrl_c_stops_it(served, tmp_path):
    recipe, project = served
    busy = subprocess.run(
        [sys.executable, "-m", "anvil", "serve", "base", "--recipe", str(recipe)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert busy.returncode == 1 and "held by the server `apply` keeps running" in busy.stderr, busy.stderr
    assert "anvil down" in busy.stderr and "--port" in busy.stderr
    folder = project.weights("base")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "anvil", "serve", str(folder), "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    import urllib.request

    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            break
        except OSError:
            time.sleep(0.3)
    health = json.loads(urllib.request.urlopen(url + "/health", timeout=5).read())
    assert health["status"] == "healthy"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130, "interrupted, as the README's exit codes say"
    time.sleep(0.5)
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/health", timeout=1)
