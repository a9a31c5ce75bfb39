"""A recipe with its own state and the shared store: refresh what exists (hashes, artifacts, processes),
plan, apply, status, gc. This is where the pure planner meets the file system; the CLI only calls these
functions."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anvil.backends import process
from anvil.errors import AnvilError
from anvil.executor import Applied, OnEvent, RunStage, execute
from anvil.planning.graph import Graph
from anvil.planning.plan import Action, Plan, make_plan
from anvil.planning.record import Outcome, StageRecord
from anvil.recipe.load import LoadedRecipe, load_recipe
from anvil.recipe.models import Serve
from anvil.recipe.rows import read_rows
from anvil.settings import store_path
from anvil.stages import evaluate, gate, source
from anvil.stages.registry import BY_KIND, build_graph
from anvil.stages.stage import StageRun, weights_of
from anvil.state.project_state import ProjectState, load_records
from anvil.state.store import Store

OnProgress = Callable[[Action, float, str], None]


@dataclass
class Project:
    loaded: LoadedRecipe
    state: ProjectState  # this recipe's own: never shared
    store: Store  # content-addressed artifacts, shareable with other projects
    graph: Graph

    def file_digests(self) -> dict[str, str]:
        root = self.loaded.root
        paths = {path for node in self.graph.nodes.values() for path in node.files}
        return {path: self.state.hashes.tree(root / path) for path in sorted(paths)}

    def plan(self, targets: Collection[str] = (), replace: Collection[str] = ()) -> Plan:
        records = self.state.load()
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
        self.state.hashes.save()
        return plan

    def drift(self, record: StageRecord) -> str | None:
        """Why what a record stands for no longer matches it: an edited artifact, a dead server."""
        stage = BY_KIND.get(record.kind)
        if stage is not None and stage.check is not None:
            return stage.check(record)
        return None if self.store.intact(record) else "artifact missing or modified outside anvil"

    def release(self, record: StageRecord) -> None:
        """Stop what a resource record stands for (the server); artifact records need nothing."""
        stage = BY_KIND.get(record.kind)
        if stage is not None and stage.stop is not None:
            stage.stop(record)

    def run_stage(self, on_progress: OnProgress | None = None):
        previous = self.state.load()

        def run(action: Action, workdir: Path | None, inputs: dict[str, Path]):
            stage = BY_KIND[action.kind]
            assert stage.run is not None, "the planner never schedules unavailable stages"
            node = self.graph.nodes[action.stage]
            ctx = StageRun(node, node.config, inputs, self.loaded.root, workdir, self.store.scratch(action.fingerprint),
                           self.state.logs, self.store.shared_cache, self.state.processes,
                           previous.get(action.stage))  # fmt: skip
            if on_progress:
                ctx.progress = lambda fraction, message: on_progress(action, fraction, message)
            return stage.run(ctx)

        return run

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The project's lock, with what a killed anvil left behind cleared: its work folders in the store
        and the processes it started that nothing records."""
        with self.state.lock():
            self.store.register(self.state.id, self.loaded.path, self.state.file)
            self.store.clear_debris()
            resources = {r.metrics["pid"] for r in self.state.load().values() if BY_KIND[r.kind].stop is not None}
            process.sweep(self.state.processes, keep=resources)
            yield

    def apply(self, plan: Plan, on_event: OnEvent = lambda *a: None, on_progress: OnProgress | None = None,
              run_stage: RunStage | None = None) -> Applied:  # fmt: skip
        """Run `plan`; `run_stage` replaces the real stages (tests hand in fakes)."""
        with self._locked():
            try:
                run = run_stage or self.run_stage(on_progress)
                return execute(plan, self.graph, self.store, self.state, run, on_event, self.release)
            finally:
                self.state.hashes.save()

    def down(self) -> list[str]:
        """Stop every running resource (the server) and forget it; the next apply starts it again."""
        with self._locked():
            records = self.state.load()
            stopped = [sid for sid, record in records.items() if BY_KIND[record.kind].stop is not None]
            for sid in stopped:
                self.release(records.pop(sid))
            self.state.save(records)
            return stopped

    def weights(self, model: str) -> Path:
        """The checkpoint folder of a built model node."""
        if model not in self.loaded.recipe.models:
            known = ", ".join(self.loaded.recipe.models) or "none"
            raise AnvilError(f"{model}: no such model in {self.loaded.path.name} (expected one of: {known})")
        record = self.state.load().get(weights_of(self.loaded.recipe, model))
        if record is None or not self.store.intact(record):
            raise AnvilError(f"{model} is not built yet: run `anvil apply --target {model}` first")
        return source.checkpoint(self.store.artifact(record.fingerprint), self.loaded.root)

    def failed_gates(self) -> dict[str, list[str]]:
        """Gate stages of this recipe whose recorded outcome is a failure, with the seed-style table rows."""
        return {sid: gate.failure_lines(r) for sid, r in self.state.load().items()
                if r.kind == "gate" and sid in self.graph.nodes and r.outcome is Outcome.FAILED}  # fmt: skip

    def eval_results(self, model: str) -> dict[str, Any]:
        record = self.state.load().get(f"{model}.eval")
        if record is None:
            evaluated = [n.model for n in self.graph.nodes.values() if n.kind == "eval"]
            raise AnvilError(f"{model} has no evaluation results (evaluated models: {', '.join(evaluated) or 'none'}; "
                             "run `anvil apply` first)")  # fmt: skip
        return {"model": model, **evaluate.results_of(self.store.artifact(record.fingerprint))}

    def status(self) -> list[dict[str, Any]]:
        records = self.state.load()
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
                    "outcome": record.outcome.value if record else None,
                    "fingerprint": record.fingerprint if record else None,
                    "started": record.started if record else None,
                    "duration_s": record.duration_s if record else None,
                    "artifact": str(self.store.artifact(record.fingerprint)) if record and not node.resource else None,
                    "metrics": record.metrics if record else {},
                }
            )
        return rows

    def garbage(self) -> list[str]:
        """Artifacts in the store that no known project's state refers to, nor this project's plan."""
        keep = {a.fingerprint for a in self.plan().actions}
        keep |= {r.fingerprint for r in self.state.load().values()}
        for state_file in self.store.known_projects().values():
            keep |= {r.fingerprint for r in load_records(state_file).values()}
        return sorted(self.store.fingerprints() - keep)

    def gc(self, dry_run: bool) -> list[tuple[str, int]]:
        with self._locked():
            found = []
            for fp in self.garbage():
                if self.store.busy(fp):  # another project is building or restoring it right now
                    continue
                found.append((fp, self.store.size(fp)))
                if not dry_run:
                    with self.store.claim(fp):
                        self.store.remove(fp)
            return found


def open_project(recipe_path: str | Path) -> Project:
    recipe_path = Path(recipe_path)
    state = ProjectState(recipe_path)
    hashes = state.hashes

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
    store = Store(store_path(loaded.root), hashes, owner=state.id)
    return Project(loaded, state, store, build_graph(loaded.recipe, loaded.suites))


def serve_target(model: str, recipe: str | Path, port: int | None) -> tuple[Path, Serve]:
    """What `anvil serve MODEL` runs: a model node's weights (or a checkpoint folder) and the recipe's
    `[serve]` options, with `port` overriding the recipe's."""
    folder = Path(model)
    if folder.is_dir():
        options = (load_recipe(recipe).recipe.serve if Path(recipe).exists() else None) or Serve()
    else:
        project = open_project(recipe)
        folder, options = project.weights(model), project.loaded.recipe.serve or Serve()
    return folder, options.model_copy(update={"port": port}) if port else options
