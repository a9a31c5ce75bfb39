"""source: a root model's weights. `synthetic:` builds a tiny offline Gemma 4 into the artifact;
`path:` and `hf:` point at a checkpoint folder (never copied) through `source.json`."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from anvil.errors import AnvilError
from anvil.planning.graph import Node
from anvil.recipe.models import Recipe, Synthetic
from anvil.stages.stage import Stage, StageContext

CODE_VERSION = 1
POINTER = "source.json"


def nodes(recipe: Recipe) -> list[Node]:
    out = []
    for name, model in recipe.models.items():
        if model.source is None:
            continue
        scheme, _, where = model.source.partition(":")
        config: dict[str, Any] = {"source": model.source}
        if scheme == "synthetic":
            config["synthetic"] = (model.synthetic or Synthetic()).model_dump(mode="json")
            config["assets"] = assets_digest()  # the chat template and tokenizer corpus it is built from
        out.append(
            Node(
                id=f"{name}.source",
                kind="source",
                config=config,
                files=(where,) if scheme == "path" else (),
                code_version=CODE_VERSION,
                model=name,
            )
        )
    return out


@cache
def assets_digest() -> str:
    from anvil.backends.synthetic import asset
    from anvil.planning.fingerprint import digest

    return digest([asset("chat_template.jinja"), asset("corpus.txt")])[:16]


def model_dir(artifact: Path) -> Path:
    """The checkpoint folder a weights artifact stands for: itself, or the folder its pointer names."""
    pointer = artifact / POINTER
    return Path(json.loads(pointer.read_text())["path"]) if pointer.exists() else artifact


def _from_hub(repo: str) -> tuple[Path, str]:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = Path(
            snapshot_download(repo, allow_patterns=["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt"])
        )
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        raise AnvilError(
            f"hf:{repo}: cannot download the weights ({type(e).__name__}). Offline, download them elsewhere "
            f'(`huggingface-cli download {repo} --local-dir DIR`), copy DIR here and use source = "path:DIR"'
        ) from None
    return folder, folder.name


def run(ctx: StageContext) -> dict[str, Any]:
    from anvil.backends import synthetic

    model = ctx.loaded.recipe.models[ctx.node.model]
    scheme, _, where = model.source.partition(":")
    if scheme == "synthetic":
        ctx.progress(0.1, "building a tiny Gemma 4")
        return synthetic.build(model.synthetic or Synthetic(), ctx.workdir)
    if scheme == "path":
        folder, revision = (ctx.loaded.root / where).resolve(), None
    else:
        ctx.progress(0.1, f"downloading {where}")
        folder, revision = _from_hub(where)
    if not (folder / "config.json").exists():
        raise AnvilError(f"{model.source}: {folder} has no config.json (expected a Hugging Face / MLX checkpoint)")
    (ctx.workdir / POINTER).write_text(json.dumps({"path": str(folder), "source": model.source, "revision": revision}))
    return {"path": str(folder), "revision": revision}


STAGE = Stage(kind="source", code_version=CODE_VERSION, nodes=nodes, run=run)
