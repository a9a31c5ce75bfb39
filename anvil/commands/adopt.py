"""`anvil import STAGE PATH`: adopt what was built by hand as the stage the recipe declares (an adapter
for a round's `train`, a fused checkpoint for its `fuse`), verified first (Project.adopt, Stage.adopt).
A verb of Python's own cannot name a module, hence this one's name."""

from __future__ import annotations

import json
from pathlib import Path

from anvil.commands import DEFAULT_RECIPE, open_project
from anvil.console import out
from anvil.errors import EXIT_OK, AnvilError
from anvil.planning.graph import stage_id


def add_to(sub) -> None:
    c = sub.add_parser(
        "import",
        help="adopt an adapter or fused checkpoint built by hand as a stage of the recipe",
        description="Adopt an artifact built outside Anvil as what the recipe declares for a stage: an adapter "
        "folder (mlx-lm / mlx-lm-lora's format) for a round's train stage, a fused checkpoint for its fuse "
        "stage. It is checked against the recipe and the parent first; it is recorded as imported, and `plan` "
        "treats the stage as up to date until the recipe changes what it would build.",
    )
    c.set_defaults(run=run)
    c.add_argument("stage", help="a stage (v1.train, v1.fuse), or a round (v1): its train or fuse, by what PATH holds")
    c.add_argument("path", type=Path, help="the adapter folder or checkpoint folder")
    c.add_argument("--recipe", default=DEFAULT_RECIPE, help="recipe file (default: anvil.toml)")
    c.add_argument("--dry-run", action="store_true", help="check it and say what would be recorded; record nothing")
    c.add_argument("--json", action="store_true", help="what was (or would be) recorded, as JSON")


def run(args) -> int:
    if not args.path.is_dir():  # before the folder's files decide what a round's name means
        raise AnvilError(f"{args.path}: no such folder (expected an adapter or checkpoint folder)")
    project = open_project(args.recipe)
    sid = args.stage
    if sid in project.loaded.recipe.models:  # a round: its adapter or its fused weights, by the folder's files
        sid = stage_id("train" if (args.path / "adapter_config.json").is_file() else "fuse", sid)
    action, metrics = project.adopt(sid, args.path, dry_run=args.dry_run)
    if args.json:
        shown = {"stage": sid, "fingerprint": action.fingerprint, "recorded": not args.dry_run, "metrics": metrics}
        print(json.dumps(shown, indent=2))
        return EXIT_OK
    said = "Would record" if args.dry_run else "Recorded"
    out().print(
        f"{said} {sid} as imported from {args.path.resolve()} (fingerprint {action.fingerprint[:12]}): it fits "
        f"the recipe and its parent"
        + (f"; served = trained: max |dlogit| {metrics['parity']['max_logit_diff']:.1e}" if "parity" in metrics else "")
        + (". Nothing was recorded (--dry-run)." if args.dry_run else ". `anvil plan` shows it up to date."),
        highlight=False,
        markup=False,
    )
    return EXIT_OK
