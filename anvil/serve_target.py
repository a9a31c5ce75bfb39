"""What `anvil serve MODEL` runs: a model node's weights (or a checkpoint folder) with the recipe's
`[serve]` options, refusing a port the server `apply` keeps running already holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anvil.errors import AnvilError
from anvil.project import open_project
from anvil.recipe.load import load_recipe
from anvil.recipe.serving import Serve


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
    project = open_project(recipe)
    options = project.loaded.recipe.serve or Serve()
    options = options.model_copy(update={"port": port}) if port else options
    served = project.state.load().get("serve")
    if served is not None and served.metrics.get("port") == options.port and project.drift(served) is None:
        raise AnvilError(f"port {options.port} is held by the server `apply` keeps running for "
                         f"{served.config.get('model')} (pid {served.metrics['pid']}): stop it with `anvil down`, "
                         "or choose another port with --port")  # fmt: skip
    return ServeTarget(project.weights(model), options, model, project.state.names)
