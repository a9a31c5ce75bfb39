"""`anvil serve MODEL`: a model node's weights (or a checkpoint folder) behind mlx-vlm's OpenAI-compatible
server in the foreground, with the recipe's `[serve]` options; a port the server `apply` keeps running
already holds is refused."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from anvil.backends.server import CLIENT_SUPPORT, serve_foreground
from anvil.commands import DEFAULT_RECIPE, command, open_project, port_number
from anvil.console import say
from anvil.errors import EXIT_ERROR, AnvilError
from anvil.recipe.load import load_recipe
from anvil.recipe.serving import Serve
from anvil.stages import serve

if TYPE_CHECKING:
    from anvil.recipe.serving import Serve


def add_to(sub) -> None:
    c = command(
        sub, "serve", run, "run a model behind mlx-vlm's OpenAI-compatible server, in the foreground", recipe=False
    )
    c.add_argument("model", help="a model node of the recipe (e.g. v2) or a checkpoint folder")
    c.add_argument("--recipe", default=DEFAULT_RECIPE, help="recipe whose [serve] settings apply (default: anvil.toml)")
    c.add_argument("--port", type=port_number, help="override the recipe's port")


def run(args) -> int:
    target = serve_target(args.model, args.recipe, args.port)

    def ready(server) -> None:
        say(f"serving {args.model} at {server.url}/v1 as model {server.model!r} (OpenAI-compatible); Ctrl-C stops it")
        say(f"clients: {CLIENT_SUPPORT}")

    serve_foreground(target.folder, target.options, ready, target.name, target.names)
    say("the server exited", stderr=True)
    return EXIT_ERROR


@dataclass(frozen=True)
class ServeTarget:
    """What `anvil serve MODEL` runs: weights, the recipe's `[serve]` options, and the name clients use."""

    folder: Path
    options: Serve
    name: str | None = None  # a model node's name; None: the checkpoint folder's name
    names: Path | None = None


def serve_target(model: str, recipe: str | Path, port: int | None) -> ServeTarget:
    """A model node's weights (or a checkpoint folder) with the recipe's `[serve]` options, `port`
    overriding the recipe's."""

    folder = Path(model)
    if folder.is_dir():
        options = (load_recipe(recipe).recipe.serve if Path(recipe).exists() else None) or Serve()
        return ServeTarget(folder, options.model_copy(update={"port": port}) if port else options)
    project = open_project(str(recipe))
    options = project.loaded.recipe.serve or Serve()
    options = options.model_copy(update={"port": port}) if port else options
    served = project.state.load().get("serve")
    running = serve.served(served) if served is not None else None
    if served is not None and running is not None and running.port == options.port and project.drift(served) is None:
        raise AnvilError(
            f"port {options.port} is held by the server `apply` keeps running for "
            f"{served.config.get('model')} (pid {running.pid}): stop it with `anvil down`, "
            "or choose another port with --port"
        )
    return ServeTarget(project.weights(model), options, model, project.state.names)
