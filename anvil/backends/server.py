"""mlx-vlm's OpenAI-compatible server: its command line, start-up and health, requests.

The one place that knows how to run the server: `anvil serve` (foreground), the `serve` stage
(background, reconciled like a resource) and evaluation all go through `running()` or `start()`; the
process itself is owned by backends/process.py."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anvil.backends import openai_api, process
from anvil.backends.process import Child, Owned
from anvil.errors import AnvilError
from anvil.recipe.serving import Serve

STARTUP_TIMEOUT_S = 180.0
# What an OpenAI client gets from mlx-vlm's server, as tried with the `openai` package and curl (README,
# "Serving"); said where `anvil serve` prints its URL so that nobody builds on what is not there.
CLIENT_SUPPORT = (
    "chat completions with streaming, tools and logprobs, and /v1/models work; /v1/completions "
    "is 404, n > 1 returns one choice, top_logprobs come back empty, and JSON mode "
    "(response_format) needs Metal (500 elsewhere)"
)


@dataclass(frozen=True)
class Server:
    owned: Owned
    host: str
    port: int
    api_key: str | None
    model: str  # the id requests name: the loaded checkpoint's path

    @property
    def pid(self) -> int:
        return self.owned.pid

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return openai_api.bearer(self.api_key)


def api_key(options: Serve) -> str | None:
    return openai_api.key_from_environment(options.api_key_env, "serve.api_key_env", "the server's")


def command(model: str, options: Serve) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "mlx_vlm.server",
        "--model",
        model,
        "--host",
        options.host,
        "--port",
        str(options.port),
        "--max-tokens",
        str(options.max_tokens),
        "--log-level",
        "WARNING",
    ]
    kv = options.kv_cache
    if kv.quantization != "none":
        argv += [
            "--kv-bits",
            str(kv.bits),
            "--kv-quant-scheme",
            kv.quantization,
            "--kv-group-size",
            str(kv.group_size),
            "--quantized-kv-start",
            str(kv.start),
        ]
    return argv


def named(model_dir: Path, name: str | None, names: Path | None) -> tuple[Path, str]:
    """Where to start the server and what to pass as `--model` so that clients name the model `name`
    (the id /v1/models lists and requests carry), not a path of the store: a link `names/<dir>/name`.
    Without `names`, the model is named after its folder."""
    model_dir = model_dir.resolve()
    if name is None or names is None:
        return model_dir.parent, model_dir.name
    folder = names / hashlib.sha256(str(model_dir).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / name
    if not (link.is_symlink() and link.resolve() == model_dir):
        tmp = folder / f".{name}.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(model_dir, target_is_directory=True)
        os.replace(tmp, link)
    return folder, name


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
    return openai_api.answers(f"{server.url}/health", server.headers, timeout)


def settings(server: Server) -> dict[str, Any] | None:
    """The server's runtime settings as it reports them now (mlx-vlm's GET /v1/settings: KV bits, sampling
    defaults ...), which any local client can change with PATCH; None when it does not say."""
    found = openai_api.get_json(f"{server.url}/v1/settings", server.headers)
    current = found.get("current") if isinstance(found, dict) else None
    return current if isinstance(current, dict) else None


def _log_tail(log: Path | None, lines: int = 15) -> str:
    if log is None:
        return "(its output is above)"
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start(
    model_dir: Path,
    options: Serve,
    log: Path | None,
    *,
    tethered: bool,
    ledger: Path | None = None,
    port: int | None = None,
    name: str | None = None,
    names: Path | None = None,
) -> tuple[Server, Child]:
    """Start the server and wait until it answers, recorded in `ledger` first. Tethered, it ends with this
    process until `process.release` (the served model, once the state records it). Output goes to `log`, or to this
    process's terminal when `log` is None. Clients name the model `name` (see `named`)."""
    port = port or options.port
    if port_in_use(options.host, port):
        holder = process.listener(port) or "another process"
        raise AnvilError(
            f"serve: port {port} on {options.host} is already in use by {holder}; set another "
            "`[serve] port` in the recipe, or stop that process"
        )
    key = api_key(options)
    env = {k: v for k, v in os.environ.items() if k != "MLX_VLM_SERVER_API_KEY"}
    if key:
        env["MLX_VLM_SERVER_API_KEY"] = key
    cwd, model = named(model_dir, name, names)
    argv = command(model, options.model_copy(update={"port": port}))
    child = process.spawn(argv, log, tethered=tethered, ledger=ledger, env=env, cwd=cwd)
    server = Server(child.owned, options.host, port, key, model)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise AnvilError(f"serve: the server exited with code {child.poll()} while starting:\n{_log_tail(log)}")
            if healthy(server):
                return server, child
            time.sleep(0.25)
        waited = f"{STARTUP_TIMEOUT_S:.0f}s"
        raise AnvilError(f"serve: no answer from {server.url}/health within {waited}:\n{_log_tail(log)}")
    except BaseException:
        child.stop()
        raise


@contextmanager
def running(
    model_dir: Path,
    options: Serve,
    log: Path | None,
    port: int | None = None,
    ledger: Path | None = None,
    name: str | None = None,
    names: Path | None = None,
) -> Iterator[Server]:
    """A server for the duration of a block, tethered to this process; always stopped, whatever happens."""
    server, child = start(model_dir, options, log, tethered=True, ledger=ledger, port=port, name=name, names=names)
    try:
        yield server
    finally:
        child.stop()


def serve_foreground(
    model_dir: Path,
    options: Serve,
    on_ready: Callable[[Server], None],
    name: str | None = None,
    names: Path | None = None,
) -> int:
    """`anvil serve`: the server on this terminal, tethered to this process, until it exits (its exit code
    is returned) or this process is interrupted; stopped either way."""
    server, child = start(model_dir, options, None, tethered=True, name=name, names=names)
    try:
        on_ready(server)
        while (code := child.poll()) is None:
            time.sleep(0.5)
        return code
    finally:
        child.stop()


def chat(server: Server, messages: list[dict], max_tokens: int = 32, timeout: float = 120.0, **extra) -> dict:
    """One greedy chat completion over HTTP; the reply as JSON."""
    body = {"model": server.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0, **extra}
    return openai_api.chat_completion(f"{server.url}/v1", body, server.headers, timeout)


def chat_until(
    server: Server, messages: list[dict], max_tokens: int, stop: tuple[str, ...], timeout: float = 120.0
) -> openai_api.Streamed:
    """One greedy chat completion streamed until a stop sequence (openai_api.chat_until)."""
    body = {"model": server.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0}
    return openai_api.chat_until(f"{server.url}/v1", body, server.headers, timeout, stop)
