"""`anvil export`: a release folder for a model of the lineage, from what is built. The checkpoint as
mlx-vlm loads it (or, `adapter`, the round's LoRA adapter in mlx-lm's format with its parent's tokenizer
and chat template), the model card (`README.md`), the dashboard (`dashboard.html`) and the data every
figure of the card came from (`anvil-report.json`). It reads the store and writes nothing into it; the
folder appears whole or not at all (written beside it, then renamed)."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anvil.backends import hub
from anvil.errors import AnvilError
from anvil.planning.graph import stage_id
from anvil.project import Project
from anvil.release import card
from anvil.stages.report.stage import DATA, PAGE
from anvil.state.atomic import fsync_dir, fsync_tree

ADAPTER_FILES = ("adapters.safetensors", "adapter_config.json")
TOKENIZER_FILES = re.compile(r"^(tokenizer.*\.json|.*\.jinja|special_tokens_map\.json|.*\.model)$")
CARD, DASHBOARD, REPORT = "README.md", "dashboard.html", "anvil-report.json"


@dataclass(frozen=True)
class Exported:
    folder: Path
    files: list[str]
    bytes: int
    card: card.Metadata
    forced: list[str]  # the gates that failed, exported anyway


def export(project: Project, model: str, out: Path, adapter: bool = False, force: bool = False) -> Exported:
    weights = project.weights(model)  # refuses an unknown or unbuilt model by name
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AnvilError(f"{out}: already exists and is not an empty folder (expected a new folder to write into)")
    report, page = _current_report(project, model)
    lineage = _lineage(project, model)
    forced = card.failed_gates(report, model)
    if forced and not force:
        raise AnvilError(
            f"{model} failed {len(forced)} gate(s): {'; '.join(forced)}. Export it anyway with --force "
            "(the card then says it was not gated)"
        )
    adapter_files = _adapter_files(project, model) if adapter else []  # refused before anything is written
    meta = card.metadata(report, lineage, adapter)
    text = hub.card_text(meta.to_dict(), card.body(report, lineage, adapter, forced))
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        # copies, never links: an edit in the release must not reach the store
        if adapter:
            partial.mkdir(parents=True)
            for file in adapter_files:
                shutil.copyfile(file, partial / file.name)
        else:
            shutil.copytree(weights, partial, copy_function=shutil.copyfile)
        shutil.copyfile(page, partial / DASHBOARD)
        (partial / REPORT).write_text(json.dumps(report, indent=1))
        (partial / CARD).write_text(text)
        fsync_tree(partial)
        if out.exists():
            out.rmdir()
        partial.rename(out)
        fsync_dir(out.parent)
    except OSError as e:
        shutil.rmtree(partial, ignore_errors=True)
        raise AnvilError(f"{out}: cannot write the release folder ({e.strerror or e}); nothing was written") from None
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    size = sum((out / f).stat().st_size for f in files)
    return Exported(out, files, size, meta, forced)


def _current_report(project: Project, model: str) -> tuple[dict[str, Any], Path]:
    """The dashboard's data and its page, when every stage the card reads of the model (its own, and all
    they need) is current and the page was drawn from it: the card's figures are the page's."""
    records, standings = project.state.load(), project.standings()
    record = records.get("report")
    if record is None or not project.store.intact(record):
        raise AnvilError("the dashboard is not built: run `anvil apply` first")
    folder = project.store.artifact(record.fingerprint)
    report = json.loads((folder / DATA).read_text())
    graph = project.graph
    # what is served comes and goes (`anvil down`): the card reads what was built
    served = graph.dependents({sid for sid, node in graph.nodes.items() if node.resource})
    read = graph.closure({sid for sid, node in graph.nodes.items() if node.model == model}) - served
    stale = [
        sid
        for sid in sorted(read)
        if (
            sid not in records
            or not standings[sid].current
            or report["sources"].get(sid, {}).get("fingerprint") != records[sid].fingerprint
        )
    ]
    if stale:
        shown = ", ".join(stale[:4]) + (f" and {len(stale) - 4} more" if len(stale) > 4 else "")
        raise AnvilError(f"{model}: {shown} not built as the dashboard shows them: run `anvil apply` first")
    return report, folder / PAGE


def _lineage(project: Project, model: str) -> card.Lineage:
    recipe = project.loaded.recipe
    chain = [model]
    while (parent := recipe.models[chain[-1]].parent) is not None:
        chain.append(parent)
    chain.reverse()
    models = []
    for name in chain:
        node = recipe.models[name]
        models.append(
            {
                "model": name,
                "parent": node.parent,
                "source": node.source,
                "dataset": node.dataset,
                "method": node.method if node.dataset else None,
                "quantize": node.quantize.label if node.quantize is not None else None,
            }
        )
    return card.Lineage(
        project=recipe.project.name,
        models=models,
        root_source=recipe.models[chain[0]].source or "",
        license=recipe.project.license,
        recipe_excerpt=_excerpt(project.loaded.path.read_text(), chain),
    )


def _excerpt(text: str, models: list[str]) -> str:
    """The recipe's `[models.<name>]` tables of the lineage, as written (comments dropped)."""
    out, keep = [], False
    for line in text.splitlines():
        header = re.match(r"^\s*\[+([^\]]+)\]+", line)
        if header:
            keep = header.group(1).strip() in {f"models.{m}" for m in models} | {"project"}
        if keep and line.strip() and not line.lstrip().startswith("#"):
            out.append(line)
    return "\n".join(out)


def _adapter_files(project: Project, model: str) -> list[Path]:
    recipe = project.loaded.recipe
    node = recipe.models[model]
    if node.dataset is None or node.matrix is not None:
        what = "a swept round (export the variant that won)" if node.matrix is not None else "not a training round"
        raise AnvilError(f"--adapter: {model} is {what}; only a round has an adapter of its own")
    record = project.state.load().get(stage_id("train", model))
    if record is None or not project.store.intact(record):
        raise AnvilError(f"{model}'s adapter is not built: run `anvil apply --target {model}` first")
    folder = project.store.artifact(record.fingerprint)
    parent = project.weights(node.parent or "")
    tokenizer = sorted(p for p in parent.iterdir() if p.is_file() and TOKENIZER_FILES.match(p.name))
    return [folder / name for name in ADAPTER_FILES] + tokenizer
