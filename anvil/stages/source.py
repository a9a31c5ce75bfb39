"""source: a root model's weights. `synthetic:` builds a tiny offline Gemma 4 into the artifact;
`path:` and `hf:` point at a checkpoint folder (never copied) through `source.json`, which holds no
absolute path of this machine: the path as the recipe writes it, or the Hub repo and pinned commit."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from anvil.backends import hub, synthetic
from anvil.backends.synthetic import asset
from anvil.errors import AnvilError
from anvil.estimates import first_run
from anvil.estimates.arithmetic import parameter_count
from anvil.estimates.cost import Cost, weights
from anvil.planning.fingerprint import digest
from anvil.planning.graph import Node, stage_id
from anvil.planning.record import StageRecord
from anvil.recipe.base import Strict
from anvil.recipe.models import Recipe, Synthetic
from anvil.stages.report.config import ReportConfig
from anvil.stages.report.view import View
from anvil.stages.stage import Recorded, Result, Stage, StageRun, Suites, read_figures, weights_kind
from anvil.state.checkpoint import weight_dtype

CODE_VERSION = 3  # 3: the synthetic base writes its config in full and has an audio tower
POINTER = "source.json"


class SourceConfig(Strict):
    source: str
    revision: str | None = None  # hf: the branch, tag or commit asked for
    synthetic: Synthetic | None = None
    assets: str | None = None  # synthetic: digest of the chat template and tokenizer corpus it is built from


def nodes(recipe: Recipe, suites: Suites) -> list[Node]:
    out = []
    for name, model in recipe.models.items():
        if model.source is None:
            continue
        scheme, _, where = model.source.partition(":")
        config = SourceConfig(source=model.source, revision=model.revision)
        if scheme == "synthetic":
            config = config.model_copy(update={"synthetic": model.synthetic or Synthetic(), "assets": assets_digest()})
        files = (where,) if scheme == "path" else ()
        out.append(Node(stage_id("source", name), "source", config, files=files, code_version=CODE_VERSION, model=name))
    return out


@cache
def assets_digest() -> str:
    return digest([asset("chat_template.jinja"), asset("corpus.txt")])[:16]


def checkpoint(artifact: Path, root: Path) -> Path:
    """The checkpoint folder a weights artifact (a source or a fuse) stands for: itself, or the folder
    its pointer names, resolved for the project whose recipe folder is `root`."""
    pointer = artifact / POINTER
    if not pointer.exists():
        return artifact
    data = json.loads(pointer.read_text())
    if data.get("revision"):
        return hub.snapshot(data["source"].removeprefix("hf:"), data["revision"], offline=True)[0]
    return (root / data["path"]).resolve()


class SourceFigures(Recorded):
    """A synthetic model's sizes as built; a Hub model's commit."""

    parameters: int | None = None
    language_parameters: int | None = None
    tensors: int | None = None
    vocab_size: int | None = None
    revision: str | None = None


def run(ctx: StageRun[SourceConfig]) -> Result:
    config = ctx.config
    scheme, _, where = config.source.partition(":")
    if scheme == "synthetic":
        ctx.progress(0.1, "building a tiny Gemma 4")
        return Result.of(SourceFigures.model_validate(synthetic.build(config.synthetic or Synthetic(), ctx.out)))
    if scheme == "path":
        folder, pointer = (ctx.root / where).resolve(), {"source": config.source, "path": where}
    else:
        ctx.progress(0.1, f"downloading {where}")
        folder, commit = hub.snapshot(where, config.revision)
        pointer = {"source": config.source, "revision": commit}
    if not (folder / "config.json").exists():
        raise AnvilError(f"{config.source}: {folder} has no config.json (expected a Hugging Face / MLX checkpoint)")
    (ctx.out / POINTER).write_text(json.dumps(pointer))
    return Result.of(SourceFigures(revision=pointer["revision"]) if "revision" in pointer else SourceFigures())


def summary(record: StageRecord) -> str:
    m, source = read_figures(SourceFigures, record), record.config.get("source", "")
    if m.parameters is not None:
        return f"{source}, {parameter_count(m.parameters)} parameters"
    return f"{source} at {m.revision[:12]}" if m.revision else source


def weights_stage(config: ReportConfig, model: str) -> str:
    """The stage whose artifact is a model's weights, from the page's notes (`stage.weights_of`)."""
    notes = config.models[model]
    return stage_id(weights_kind(bool(notes.source), bool(notes.quantize), bool(notes.variants)), model)


def facts(view: View, sid: str) -> dict[str, Any]:
    """Layers, dtype and size of a built checkpoint; {} when it cannot be read (a Hub cache cleared)."""
    return view.read(sid, lambda artifact: _facts(checkpoint(artifact, view.root)) | {"from": sid}) or {}


def _facts(folder: Path) -> dict[str, Any]:
    config = json.loads((folder / "config.json").read_text())
    return {
        "layers": config.get("text_config", config).get("num_hidden_layers"),
        "dtype": weight_dtype(folder),
        "bytes": sum(f.stat().st_size for f in folder.glob("*.safetensors")),
    }


def model_state(config: ReportConfig, view: View, model: str) -> dict[str, Any]:
    """The most telling state of a model's stages: running (and which), failed, served, built, pending."""
    own = {sid: s for sid, s in view.states.items() if sid.startswith(f"{model}.")}
    if config.served == model and view.states.get("serve") in ("served", "running"):
        own["serve"] = view.states["serve"]
    for state in ("running", "failed"):
        found = [sid for sid, s in own.items() if s == state]
        if found:
            return {"state": state, "stage": found[0]}
    if own.get("serve") == "served":
        return {"state": "served", "stage": "serve"}
    weights = own.get(weights_stage(config, model))
    if weights in ("built", "warned"):
        return {"state": "built", "stage": weights_stage(config, model)}
    pending = [s for s in own.values() if s not in ("built", "warned")]
    return {"state": pending[0] if pending else "pending", "stage": None}


def page(config: ReportConfig, view: View) -> dict[str, Any]:
    """The lineage: each model, what it came from and its most telling state."""
    lineage = [
        {
            "model": name,
            "parent": m.parent,
            "source": m.source,
            "dataset": m.dataset,
            **model_state(config, view, name),
            "from": weights_stage(config, name),
        }
        for name, m in config.models.items()
    ]
    return {"lineage": lineage}


COST = Cost(start_s=0.9, unit="bytes", units=weights, first_run=first_run.streamed)


STAGE = Stage(
    kind="source",
    code_version=CODE_VERSION,
    nodes=nodes,
    run=run,
    summary=summary,
    cost=COST,
    figures=SourceFigures,
    page=page,
)
