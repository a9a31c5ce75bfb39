"""A recipe and its store together: refresh what exists (hashes, artifacts), plan, apply, status, gc.
This is where the pure planner meets the file system; the CLI only calls these functions."""

from __future__ import annotations

import json
import shutil
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anvil.errors import AnvilError
from anvil.executor import OnEvent, Outcome, execute
from anvil.planning.graph import Graph
from anvil.planning.plan import Action, Plan, make_plan
from anvil.recipe.load import LoadedRecipe, load_recipe
from anvil.recipe.rows import read_rows
from anvil.settings import store_path
from anvil.stages import BY_KIND, build_graph
from anvil.stages.source import model_dir
from anvil.stages.stage import StageContext, weights_of
from anvil.state.store import StageRecord, Store


@dataclass
class Project:
    loaded: LoadedRecipe
    store: Store
    graph: Graph

    def file_digests(self) -> dict[str, str]:
        root = self.loaded.root
        paths = {path for node in self.graph.nodes.values() for path in node.files}
        return {path: self.store.hashes.tree(root / path) for path in sorted(paths)}

    def plan(self, targets: Collection[str] = (), replace: Collection[str] = ()) -> Plan:
        records = self.store.load_state()
        selected: set[str] = set()
        for target in targets:
            selected |= self.graph.select(target)
        try:
            plan = make_plan(
                self.graph,
                records,
                self.file_digests(),
                drifted={sid: why for sid, record in records.items() if (why := self.drift(record))},
                cached=lambda fp: self.store.cached(fp) is not None,
                targets=selected,
                replace=replace,
            )
        except ValueError as e:
            raise AnvilError(str(e)) from None
        self.store.hashes.save()
        return plan

    def drift(self, record: StageRecord) -> str | None:
        """Why what a record stands for no longer matches it: an edited artifact, a dead server."""
        stage = BY_KIND.get(record.kind)
        if stage is not None and stage.check is not None:
            return stage.check(record)
        return None if self.store.intact(record) else "artifact missing or modified outside anvil"

    def release(self, record: StageRecord) -> None:
        """Stop what a resource record stands for (the server); artifact records need nothing."""
        stop = _stop_of(record)
        if stop is not None:
            stop(record)

    def run_stage(self, on_progress=None):
        previous = self.store.load_state()

        def run(action: Action, workdir: Path | None, inputs: dict[str, Path]) -> dict[str, Any]:
            stage = BY_KIND[action.kind]
            assert stage.run is not None, "the planner never schedules unavailable stages"
            scratch = self.store.root / "scratch" / action.fingerprint
            root = self.store.root
            ctx = StageContext(self.graph.nodes[action.stage], self.loaded, workdir, inputs, scratch,
                               root / "logs", root / "cache", previous.get(action.stage))  # fmt: skip
            if on_progress:
                ctx.progress = lambda fraction, message: on_progress(action, fraction, message)
            metrics = stage.run(ctx)
            shutil.rmtree(scratch, ignore_errors=True)
            return metrics

        return run

    def apply(self, plan: Plan, on_event: OnEvent = lambda *a: None, on_progress=None) -> Outcome:
        with self.store.lock():
            self.store.clear_debris()
            try:
                return execute(plan, self.graph, self.store, self.run_stage(on_progress), on_event, self.release)
            finally:
                self.store.hashes.save()

    def down(self) -> list[str]:
        """Stop every running resource (the server) and forget it; the next apply starts it again."""
        with self.store.lock():
            records = self.store.load_state()
            stopped = [sid for sid, record in records.items() if _stop_of(record) is not None]
            for sid in stopped:
                self.release(records.pop(sid))
            self.store.save_state(records)
            return stopped

    def weights(self, model: str) -> Path:
        """The checkpoint folder of a built model node."""
        if model not in self.loaded.recipe.models:
            known = ", ".join(self.loaded.recipe.models) or "none"
            raise AnvilError(f"{model}: no such model in {self.loaded.path.name} (expected one of: {known})")
        stage = weights_of(self.loaded.recipe, model)
        record = self.store.load_state().get(stage)
        if record is None or not self.store.intact(record):
            raise AnvilError(f"{model} is not built yet: run `anvil apply --target {model}` first")
        return model_dir(self.store.artifact(record.fingerprint))

    def failed_gates(self) -> dict[str, list[str]]:
        """Gate stages of this recipe whose recorded result is a failure, with the seed-style table rows."""
        from anvil.stages.gate import failure_lines

        records = self.store.load_state()
        return {sid: failure_lines(r.metrics) for sid, r in records.items()
                if r.kind == "gate" and sid in self.graph.nodes and r.metrics.get("passed") is False}  # fmt: skip

    def eval_results(self, model: str) -> dict[str, Any]:
        record = self.store.load_state().get(f"{model}.eval")
        if record is None:
            evaluated = [n.model for n in self.graph.nodes.values() if n.kind == "eval"]
            raise AnvilError(f"{model} has no evaluation results (evaluated models: {', '.join(evaluated) or 'none'}; "
                             "run `anvil apply` first)")  # fmt: skip
        return json.loads((self.store.artifact(record.fingerprint) / "results.json").read_text())

    def status(self) -> list[dict[str, Any]]:
        records = self.store.load_state()
        rows = []
        for node in self.graph.order():
            record: StageRecord | None = records.get(node.id)
            rows.append(
                {
                    "stage": node.id,
                    "model": node.model,
                    "kind": node.kind,
                    "built": record is not None,
                    "available": node.available,
                    "fingerprint": record.fingerprint if record else None,
                    "started": record.started if record else None,
                    "duration_s": record.duration_s if record else None,
                    "artifact": str(self.store.artifact(record.fingerprint)) if record and not node.resource else None,
                    "metrics": record.metrics if record else {},
                }
            )
        return rows

    def garbage(self) -> list[str]:
        """Artifacts in the store that no stage of the recipe refers to, now or in its plan."""
        keep = {r.fingerprint for sid, r in self.store.load_state().items() if sid in self.graph.nodes}
        keep |= {a.fingerprint for a in self.plan().actions}
        return sorted(self.store.fingerprints() - keep)

    def gc(self, dry_run: bool) -> list[tuple[str, int]]:
        with self.store.lock():
            found = [(fp, self.store.size(fp)) for fp in self.garbage()]
            if not dry_run:
                self.store.clear_debris()
                for fp, _ in found:
                    self.store.remove(fp)
            return found


def _stop_of(record: StageRecord):
    stage = BY_KIND.get(record.kind)
    return None if stage is None else stage.stop


def open_project(recipe_path: str | Path) -> Project:
    recipe_path = Path(recipe_path)
    root = recipe_path.resolve().parent
    store = Store(store_path(root))
    hashes = store.hashes

    def check_rows(path: Path, shown_as: str):
        # Row validation is cached by content: an unchanged file is not parsed again.
        key = f"rows:{hashes.file(path)}"
        if key in hashes.facts:
            return hashes.facts[key], []
        rows, problems = read_rows(path, shown_as)
        if not problems:
            hashes.facts[key] = len(rows)
            hashes.dirty = True
        return len(rows), problems

    loaded = load_recipe(recipe_path, check_rows=check_rows)
    return Project(loaded, store, build_graph(loaded.recipe))
