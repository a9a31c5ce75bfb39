"""mlx-vlm's OpenAI-compatible server as a process Anvil starts, health-checks and stops.

The one place that knows how to run the server: `anvil serve` (foreground), the `serve` stage
(background, reconciled like a resource) and evaluation all go through `running()` or `start()`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from anvil.errors import AnvilError
from anvil.process import alive
from anvil.recipe.models import Serve

STARTUP_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Server:
    pid: int
    host: str
    port: int
    api_key: str | None
    model: str  # the id requests name: the loaded checkpoint's path

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def api_key(options: Serve) -> str | None:
    if options.api_key_env is None:
        return None
    key = os.environ.get(options.api_key_env)
    if not key:
        raise AnvilError(f"serve.api_key_env: environment variable {options.api_key_env} is not set (expected the key)")
    return key


def command(model_dir: Path, options: Serve) -> list[str]:
    argv = [sys.executable, "-m", "mlx_vlm.server", "--model", str(model_dir), "--host", options.host,
            "--port", str(options.port), "--max-tokens", str(options.max_tokens), "--log-level", "WARNING"]  # fmt: skip
    kv = options.kv_cache
    if kv.quantization != "none":
        argv += ["--kv-bits", str(kv.bits), "--kv-quant-scheme", kv.quantization,
                 "--kv-group-size", str(kv.group_size), "--quantized-kv-start", str(kv.start)]  # fmt: skip
    return argv


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def healthy(server: Server, timeout: float = 2.0) -> bool:
    request = urllib.request.Request(f"{server.url}/health", headers=server.headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _log_tail(log: Path | None, lines: int = 15) -> str:
    if log is None:
        return "(its output is above)"
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start(model_dir: Path, options: Serve, log: Path | None, port: int | None = None) -> Server:
    """Start the server in its own session (it outlives this process) and wait until it answers.
    Its output goes to `log`, or to this process's terminal when `log` is None."""
    port = port or options.port
    if port_in_use(options.host, port):
        raise AnvilError(f"serve: port {port} on {options.host} is already in use by another process")
    key = api_key(options)
    env = {k: v for k, v in os.environ.items() if k != "MLX_VLM_SERVER_API_KEY"}
    if key:
        env["MLX_VLM_SERVER_API_KEY"] = key
    argv = command(model_dir, options.model_copy(update={"port": port}))
    if log is None:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True)  # fmt: skip
    server = Server(proc.pid, options.host, port, key, str(model_dir))
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AnvilError(f"serve: the server exited with code {proc.returncode} while starting:\n{_log_tail(log)}")
        if healthy(server):
            return server
        time.sleep(0.25)
    stop(proc.pid)
    raise AnvilError(f"serve: no answer from {server.url}/health within {STARTUP_TIMEOUT_S:.0f}s:\n{_log_tail(log)}")


def stop(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.1)
        if not alive(pid):
            return


@contextmanager
def running(model_dir: Path, options: Serve, log: Path | None, port: int | None = None) -> Iterator[Server]:
    """A server for the duration of a block; always stopped, whatever happens inside."""
    server = start(model_dir, options, log, port)
    try:
        yield server
    finally:
        stop(server.pid)


def chat(server: Server, messages: list[dict], max_tokens: int = 32, timeout: float = 120.0, **extra) -> dict:
    """One greedy chat completion over HTTP; the reply as JSON."""
    body = {"model": server.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0, **extra}
    request = urllib.request.Request(f"{server.url}/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", **server.headers})  # fmt: skip
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())
