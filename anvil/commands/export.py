"""`anvil export MODEL DIR`: a release folder for a built model of the lineage (release/folder.py): its
checkpoint (or `--adapter`), its model card, the dashboard; `--push REPO` uploads it to the Hub."""

from __future__ import annotations

import json
from pathlib import Path

from anvil.commands import DEFAULT_RECIPE, open_project
from anvil.console import out
from anvil.errors import EXIT_OK


def add_to(sub) -> None:
    c = sub.add_parser(
        "export",
        help="write a release folder for a model: checkpoint, model card, dashboard",
        description="Write a release folder for a built model of the lineage: the checkpoint as mlx-vlm loads "
        "it (or its LoRA adapter), a Hugging Face model card (README.md) with the evaluation results, and the "
        "dashboard. Reads what is built; writes nothing into the store.",
    )
    c.set_defaults(run=run)
    c.add_argument("model", help="a model node of the recipe, e.g. v2 or v2q4")
    c.add_argument("dir", type=Path, help="the folder to write (new, or empty)")
    c.add_argument("--recipe", default=DEFAULT_RECIPE, help="recipe file (default: anvil.toml)")
    c.add_argument("--adapter", action="store_true", help="the round's LoRA adapter alone (mlx-lm's format)")
    c.add_argument("--force", action="store_true", help="export a model whose gates failed (the card says so)")
    c.add_argument("--push", metavar="REPO", help="then upload the folder to this Hub model repo (ORG/NAME)")
    c.add_argument("--json", action="store_true", help="what was written, as JSON")


def run(args) -> int:
    from anvil.backends import hub
    from anvil.release.folder import export

    done = export(open_project(args.recipe), args.model, args.dir, adapter=args.adapter, force=args.force)
    url = hub.push(done.folder, args.push) if args.push else None
    if args.json:
        shown = {"folder": str(done.folder), "files": done.files, "bytes": done.bytes, "forced": done.forced}
        print(json.dumps(shown | {"card": done.card.to_dict(), "pushed": url}, indent=2))
        return EXIT_OK
    what = "adapter" if args.adapter else "checkpoint"
    results = len(done.card.results)
    out().print(
        f"Exported {args.model} to {done.folder}: {what} and tokenizer ({len(done.files) - 3} files, "
        f"{done.bytes / 1e6:.1f} MB in all), README.md (model card, {results} evaluation result"
        f"{'s' * (results != 1)}), dashboard.html, anvil-report.json",
        highlight=False,
        markup=False,
    )
    if done.forced:
        out().print(f"Not gated: {'; '.join(done.forced)} (exported with --force; the card says so)", markup=False)
    if url:
        out().print(f"Pushed to {url}", markup=False)
    return EXIT_OK
