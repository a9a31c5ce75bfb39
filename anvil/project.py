"""A recipe with its own state and the shared store: refresh what exists (hashes, artifacts, processes),
plan, apply, status, gc. Where the pure planner meets the file system; the CLI only calls these."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvil.errors import AnvilError, StalePlan
from anvil.planning.graph import Graph, stage_id
from anvil.planning.plan import Action, Plan, make_plan
from anvil.planning.record import Outcome, StageRecord
from anvil.recipe import contamination, rows
from anvil.recipe.load import LoadedRecipe, load_recipe
from anvil.recipe.toml import toml_file
from anvil.settings import store_path
from anvil.stages import calibration, evaluate, gate, knowledge, serve, source
from anvil.stages.registry import BY_KIND, build_graph, summary_of
from anvil.stages.stage import Result, StageRun, weights_of
from anvil.state.project_state import ProjectState, load_records
from anvil.state.remote import Remote, Shared, remote_url
from anvil.state.store import Store

if TYPE_CHECKING:
    from anvil.executor import Applied, OnEvent, RunStage

OnProgress = Callable[[Action, float, str], None]


@dataclass
class Project:
    loaded: LoadedRecipe
    state: ProjectState  # this recipe's own: never shared
    store: Store  # content-addressed artifacts, shareable with other projects
    graph: Graph
    shared: Shared = field(default_factory=lambda: Shared(None))  # the remote store, if the recipe has one
    forgotten: list[str] = field(default_factory=list)  # by `down`: records of processes another project started
    gone: list[str] = field(default_factory=list)  # by `down`: records of processes no longer running

    def file_digests(self) -> dict[str, str]:
        root = self.loaded.root
        paths = {path for node in self.graph.nodes.values() for path in node.files}
        return {path: self.state.hashes.tree(root / path) for path in sorted(paths)}

    def contamination_warning(self, shown_as: str) -> str | None:
        """What to warn of evaluation prompts found in training data (InvalidInput when the recipe says that
        is an error), remembered by the content of every file involved."""
        return contamination.warning(self.loaded, self.state.hashes, shown_as)

    def plan(self, targets: Collection[str] = (), replace: Collection[str] = (), exclude: Collection[str] = ()) -> Plan:
        """What apply would do: reads the recipe, the files, the state, the stores and the served process,
        and changes nothing but the stat cache."""
        records = self.state.load()
        selected: set[str] = set()
        for target in targets:
            selected |= self.graph.select(target)
        excluded: set[str] = set()
        for name in exclude:
            excluded |= self.graph.select(name, "--exclude")
        try:
            plan = make_plan(
                self.graph,
                records,
                self.file_digests(),
                drifted={sid: why for sid, record in records.items() if (why := self.drift(record))},
                cached=lambda fp: self.store.cached(fp) is not None,
                remote=self.shared.has,
                targets=selected,
                replace=replace,
                exclude=excluded,
            )
        except ValueError as e:
            raise AnvilError(str(e)) from None
        self.state.hashes.save()
        if not plan.changes:
            return plan
        from anvil.estimates import for_project as estimating  # what a change would cost: only for changes

        return dataclasses.replace(
            plan, estimates=estimating.for_plan(plan, self.graph, self.loaded, records, self.store)
        )

    def drift(self, record: StageRecord) -> str | None:
        """Why what a record stands for no longer matches it: an edited artifact, a dead server, a server
        of another project (a state file copied with its project)."""
        if self.foreign(record):
            return f"the recorded process {record.metrics.get('pid')} was started by another project; left alone"
        stage = BY_KIND.get(record.kind)
        if stage is not None and stage.check is not None:
            return stage.check(record)
        return None if self.store.intact(record) else "artifact missing or modified outside anvil"

    def release(self, record: StageRecord) -> bool:
        """Stop what a resource record stands for (the server), if this project started it and it still
        runs; artifact records need nothing. Whether a process was signalled."""
        stage = BY_KIND.get(record.kind)
        if stage is not None and stage.stop is not None and not self.foreign(record):
            return stage.stop(record)
        return False

    def _recorded(self, record: StageRecord) -> None:
        stage = BY_KIND.get(record.kind)
        if stage is not None and stage.recorded is not None:
            stage.recorded(record, self.state.processes)

    def foreign(self, record: StageRecord) -> bool:
        """Whether another project started what the record stands for (a state file copied with its project)."""
        return record.metrics.get("project", self.state.id) != self.state.id

    def run_stage(self, on_progress: OnProgress | None = None):
        previous = self.state.load()

        def run(action: Action, workdir: Path | None, inputs: dict[str, Path]):
            stage = BY_KIND[action.kind]
            assert stage.run is not None, "the planner never schedules unavailable stages"
            node, now = self.graph.nodes[action.stage], self.state.load()
            records = {role: now[need] for role, need in node.needs.items() if role in inputs and need in now}
            ctx = StageRun(node, node.config, inputs, self.loaded.root, workdir, self.store.scratch(action.fingerprint),
                           self.store.shared_cache, self.state, previous.get(action.stage), records,
                           node.options)  # fmt: skip
            if on_progress:
                ctx.progress = lambda fraction, message: on_progress(action, fraction, message)
            result = stage.run(ctx)
            if node.resource:  # whose process it is: a copy of this project's state must not stop it
                result = Result({**result.metrics, "project": self.state.id}, result.outcome)
            return result

        return run

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The project's lock, with what a killed anvil left behind cleared: its work folders in the store
        and the processes it started that nothing records."""
        with self.state.lock():
            self.store.clear_debris()
            resources = {int(r.metrics.get("pid", 0)) for r in self.state.load().values() if _resource(r)}
            from anvil.backends import process  # psutil: only what takes the lock needs it

            process.sweep(self.state.processes, keep=resources)
            yield

    def apply(self, plan: Plan, on_event: OnEvent = lambda *a: None, on_progress: OnProgress | None = None,
              run_stage: RunStage | None = None, saved: Mapping[str, Any] | None = None) -> Applied:  # fmt: skip
        """Run `plan`; `run_stage` replaces the real stages (tests hand in fakes). With `saved` (a saved
        plan), refuse unless the plan still holds once the lock is held."""
        from anvil.estimates import for_project as estimating
        from anvil.executor import execute
        from anvil.planning.saved import differences

        with self._locked():
            if saved is not None and (changed := differences(saved, plan, self.state.load())):
                raise StalePlan(changed)
            if cannot := estimating.too_big(plan.estimates, self.loaded)[0]:
                raise AnvilError("not enough memory, nothing was run:\n  " + "\n  ".join(cannot) + "\nLower "
                                 "batch_size, max_seq_length or last_layers, turn on grad_checkpoint, or use a "
                                 "quantized model; planning for a bigger host? set [machine] memory_gb")  # fmt: skip
            self.store.register(self.state.id, self.loaded.path, self.state.file)
            try:
                run = estimating.recorded(self.store, self.graph, self.loaded.root, plan.estimates,
                                          estimating.shapes(self.loaded, self.state.load(), self.store),
                                          run_stage or self.run_stage(on_progress))  # fmt: skip
                return execute(plan, self.graph, self.store, self.state, run, on_event, self.release,
                               self.shared.fetch(self.store), self._recorded)  # fmt: skip
            finally:
                self.state.hashes.save()

    def down(self) -> list[str]:
        """Stop every running resource (the server) this project started and forget it. Records of another
        project's processes are forgotten, not stopped (`forgotten`), as are those of ended ones (`gone`)."""
        with self._locked():
            records = self.state.load()
            resources = [sid for sid, record in records.items() if _resource(record)]
            self.forgotten = [sid for sid in resources if self.foreign(records[sid])]
            stopped = [sid for sid in resources if self.release(records.pop(sid))]
            self.gone = [sid for sid in resources if sid not in stopped and sid not in self.forgotten]
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
        """Gate and judge-calibration stages of this recipe whose recorded outcome is a failure, with what
        failed (the seed-style table rows of a gate, the figures a judge missed)."""
        lines = {"gate": gate.failure_lines, "calibration": calibration.failure_lines}
        return {sid: lines[r.kind](r) for sid, r in self.state.load().items()
                if r.kind in lines and sid in self.graph.nodes and r.outcome is Outcome.FAILED}  # fmt: skip

    def eval_results(self, model: str) -> dict[str, Any]:
        """A model's suite results and knowledge results, with the names of the models it is compared with."""
        records = self.state.load()
        scored, known = records.get(stage_id("eval", model)), records.get(stage_id("knowledge", model))
        if scored is None and known is None:
            evaluated = [n.model for n in self.graph.nodes.values() if n.kind in ("eval", "knowledge") and n.model]
            evaluated = list(dict.fromkeys(evaluated))
            raise AnvilError(f"{model} has no evaluation results (evaluated models: {', '.join(evaluated) or 'none'}; "
                             "run `anvil apply` first)")  # fmt: skip
        recipe = self.loaded.recipe
        against = {"base": recipe.root_of(model), "parent": recipe.models[model].parent}
        results: dict[str, Any] = {"model": model, "against": against, "suites": {}, "runs": []}
        if scored is not None:
            results |= evaluate.results_of(self.store.artifact(scored.fingerprint))
            results["calibration"] = {suite: records[sid].metrics if sid in records else None for suite, sid in
                                      calibration.calibrated_suites(recipe, self.loaded.suites).items()}  # fmt: skip
        if known is not None:
            results["knowledge"] = knowledge.results_of(self.store.artifact(known.fingerprint))["benchmarks"]
        if (fused := records.get(stage_id("fuse", model))) is not None and "parity" in fused.metrics:
            results["parity"] = fused.metrics["parity"]  # the model evaluated is the model trained
        if (made := records.get(stage_id("quantize", model))) is not None:
            results["quantized"] = made.metrics | {"margin": recipe.models[model].quantize.margin}  # type: ignore[union-attr]
        if (served := records.get("serve")) is not None and served.config.get("model") == model:
            results["served"] = serve.figures(served)  # ... and the model served
        return results

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
                    "summary": summary_of(record) if record else None,
                    "metrics": record.metrics if record else {},
                    "problem": self._problem(record, node.resource) if record else None,
                    "foreign": bool(record and node.resource and self.foreign(record)),
                }
            )
        return rows

    def _problem(self, record: StageRecord, resource: bool) -> str | None:
        """A resource probed as plan does; an artifact only looked for (hashing it all is plan's job)."""
        if resource:
            return self.drift(record)
        return None if self.store.artifact(record.fingerprint).is_dir() else "artifact missing from the store"

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
    toml_file(recipe_path, "recipe")  # before its state folder is named from its resolved path
    state = ProjectState(recipe_path)
    hashes = state.hashes
    loaded = load_recipe(recipe_path, check_rows=rows.cached(hashes))
    store = Store(store_path(loaded.root), hashes, owner=state.id)
    url = remote_url(loaded.recipe.store.remote, loaded.root)
    shared = Shared(Remote(url, loaded.recipe.store.endpoint_url) if url else None)
    return Project(loaded, state, store, build_graph(loaded.recipe, loaded.suites), shared)


def _resource(record: StageRecord) -> bool:
    """Whether a record stands for a running process (the server) rather than an artifact."""
    stage = BY_KIND.get(record.kind)
    return stage is not None and stage.stop is not None
