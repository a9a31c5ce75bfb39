"""A recipe with its own state and the shared store: refresh what exists (hashes, artifacts, processes),
plan, apply, status, gc. Where the pure planner meets the file system; the CLI only calls these."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvil.backends import process
from anvil.errors import AnvilError, StageFailed, StalePlan
from anvil.estimates import for_project as estimating
from anvil.executor import execute
from anvil.planning.graph import Graph
from anvil.planning.plan import Act, Action, Plan, make_plan
from anvil.planning.record import Outcome, StageRecord
from anvil.planning.saved import differences
from anvil.planning.standing import Standing, State, standings
from anvil.recipe import contamination, rows
from anvil.recipe.load import LoadedRecipe, load_recipe
from anvil.recipe.toml import toml_file
from anvil.settings import store_path
from anvil.stages import source
from anvil.stages.registry import BY_KIND, build_graph
from anvil.stages.stage import StageRun, weights_of
from anvil.state.project_state import ProjectState, load_records
from anvil.state.remote import Remote, Shared, remote_url
from anvil.state.store import Store

if TYPE_CHECKING:
    from anvil.executor import Applied, OnEvent, RunStage

OnProgress = Callable[[Action, float, str], None]


@dataclass(frozen=True)
class Failure:
    stage: str
    means: str  # what its failure holds back ("not promoted")
    lines: list[str]  # what failed
    exit_code: int


@dataclass
class Project:
    loaded: LoadedRecipe
    state: ProjectState  # this recipe's own: never shared
    store: Store  # content-addressed artifacts, shareable with other projects
    graph: Graph
    shared: Shared = field(default_factory=lambda: Shared(None))  # the remote store, if the recipe has one
    forgotten: list[str] = field(default_factory=list)  # by `down`: records of processes another project started
    gone: list[str] = field(default_factory=list)  # by `down`: records of processes no longer running
    concurrency: dict[str, str] = field(default_factory=dict)  # by stage: what `concurrency = "auto"` chose, why

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

        return dataclasses.replace(
            plan, estimates=estimating.for_plan(plan, self.graph, self.loaded, records, self.store)
        )

    def drift(self, record: StageRecord) -> str | None:
        """Why what a record stands for no longer matches it: an edited artifact, a dead server, a server
        of another project (a state file copied with its project)."""
        if self.foreign(record):
            return f"the recorded process {record.envelope.pid} was started by another project; left alone"
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
        return (record.envelope.project or self.state.id) != self.state.id

    def run_stage(self, on_progress: OnProgress | None = None, adopting: Path | None = None):
        """The function that runs a planned stage; with `adopting`, one that adopts that folder as the
        stage's artifact instead (`anvil import`: Stage.adopt), refusing a failed outcome whole."""
        previous = self.state.load()

        def run(action: Action, workdir: Path | None, inputs: dict[str, Path]):
            stage = BY_KIND[action.kind]
            assert stage.run is not None and (adopting is None or stage.adopt is not None), "planned as buildable"
            node, now = self.graph.nodes[action.stage], self.state.load()
            records = {role: now[need] for role, need in node.needs.items() if role in inputs and need in now}
            ctx = StageRun(
                node,
                node.config,
                inputs,
                self.loaded.root,
                workdir,
                self.store.scratch(action.fingerprint),
                self.store.shared_cache,
                self.state,
                previous.get(action.stage),
                records,
                node.options,
            )
            if on_progress:
                ctx.progress = lambda fraction, message: on_progress(action, fraction, message)
            if adopting is not None and stage.adopt is not None:
                result = stage.adopt(ctx, adopting)
                if result.outcome is Outcome.FAILED:
                    raise AnvilError(f"{adopting}: {result.reason}")
                result = dataclasses.replace(result, metrics={**result.metrics, "imported_from": str(adopting)})
            else:
                result = stage.run(ctx)
            if node.resource:  # whose process it is: a copy of this project's state must not stop it
                result = dataclasses.replace(result, metrics={**result.metrics, "project": self.state.id})
            return result

        return run

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The project's lock, with what a killed anvil left behind cleared: its work folders in the store
        and the processes it started that nothing records."""
        with self.state.lock():
            self.store.clear_debris()
            resources = {r.envelope.pid or 0 for r in self.state.load().values() if _resource(r)}

            process.sweep(self.state.processes, keep=resources)
            yield

    def apply(
        self,
        plan: Plan,
        on_event: OnEvent = lambda *a: None,
        on_progress: OnProgress | None = None,
        run_stage: RunStage | None = None,
        saved: Mapping[str, Any] | None = None,
    ) -> Applied:
        """Run `plan`; `run_stage` replaces the real stages (tests hand in fakes). With `saved` (a saved
        plan), refuse unless the plan still holds once the lock is held."""

        with self._locked():
            if saved is not None and (changed := differences(saved, plan, self.state.load())):
                raise StalePlan(changed)
            if cannot := estimating.too_big(plan.estimates, self.loaded)[0]:
                raise AnvilError(
                    "not enough memory, nothing was run:\n  " + "\n  ".join(cannot) + "\nLower "
                    "batch_size, max_seq_length or last_layers, turn on grad_checkpoint, or use a "
                    "quantized model; planning for a bigger host? set [machine] memory_gb"
                )
            self.store.register(self.state.id, self.loaded.path, self.state.file)
            try:
                run = estimating.recorded(
                    self.store,
                    self.graph,
                    self.loaded.root,
                    plan.estimates,
                    estimating.shapes(self.loaded, self.state.load(), self.store),
                    run_stage or self.run_stage(on_progress),
                )
                return execute(
                    plan,
                    self.graph,
                    self.store,
                    self.state,
                    run,
                    on_event,
                    self.release,
                    self.shared.fetch(self.store),
                    self._recorded,
                )
            finally:
                self.state.hashes.save()

    def adopt(self, sid: str, folder: Path, dry_run: bool = False) -> tuple[Action, dict[str, Any]]:
        """`anvil import`: adopt `folder` (made outside Anvil) as stage `sid`'s artifact, under the fingerprint
        the recipe gives the stage now, once its kind has checked it (Stage.adopt); the planned action and
        the metrics recorded (with `dry_run`, that would be). Refused whole: a kind that cannot be imported,
        a stage built or in the run-cache, needs not built, a folder that does not fit."""
        node = self.graph.nodes.get(sid)
        stage = BY_KIND[node.kind] if node is not None else None
        importable = [n for n, x in self.graph.nodes.items() if BY_KIND[x.kind].adopt is not None]
        if node is None or stage is None or stage.adopt is None:
            raise AnvilError(f"{sid}: not a stage that can be imported (expected one of: {', '.join(importable)})")
        with self._locked():
            plan = dataclasses.replace(self.plan(targets=[sid]), estimates={})
            action = next(a for a in plan.actions if a.stage == sid)
            pending = [a.stage for a in plan.actions if a.stage != sid and a.act is not Act.UP_TO_DATE]
            if action.act is Act.UP_TO_DATE:
                raise AnvilError(f"{sid} is built (fingerprint {action.fingerprint[:12]}): nothing was imported")
            if action.act is Act.RESTORE:
                raise AnvilError(
                    f"{sid} was built before: `anvil apply` restores it from the store; nothing was imported"
                )
            if pending:
                raise AnvilError(
                    f"{sid} cannot be imported yet: it needs {', '.join(pending)}, not built (import "
                    f"{pending[-1]}, or build it: `anvil apply --target {pending[-1]}`)"
                )
            if action.act not in (Act.CREATE, Act.RERUN):
                raise AnvilError(f"{sid} cannot be imported: {'; '.join(action.reasons)}")
            run = self.run_stage(adopting=folder.resolve())
            if dry_run:
                records = self.state.load()
                inputs = {role: self.store.artifact(records[need].fingerprint) for role, need in node.needs.items()}
                with tempfile.TemporaryDirectory(dir=self.store.root) as scratch:
                    return action, run(action, Path(scratch), inputs).metrics
            self.store.register(self.state.id, self.loaded.path, self.state.file)
            try:
                execute(plan, self.graph, self.store, self.state, run)
            except StageFailed as e:  # the folder's own error, not a stage that failed to build
                raise AnvilError(f"{e.__cause__ or e}\nNothing was imported.") from None
            return action, self.state.load()[sid].metrics

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

    def standings(self, probed: Plan | None = None) -> dict[str, Standing]:
        """Where every stage stands, its processes and artifacts probed (`planning/standing.py`); its
        processes as `probed` (a plan made just now) found them, rather than asked again."""
        records = self.state.load()
        known = {sid: record for sid, record in records.items() if sid in self.graph.nodes}
        problems = {
            sid: probed.drifted.get(sid)
            if probed is not None and self.graph.nodes[sid].resource
            else self.problem(record, self.graph.nodes[sid].resource)
            for sid, record in known.items()
        }
        foreign = {sid for sid, record in known.items() if self.graph.nodes[sid].resource and self.foreign(record)}
        return standings(self.graph, records, problems, foreign)

    def failures(self, standings: Mapping[str, Standing] | None = None) -> list[Failure]:
        """Every stage whose outcome, as it now stands (`standings`, or probed now), is a failure, with what
        failed."""
        records, found = self.state.load(), []
        for sid, standing in (standings if standings is not None else self.standings()).items():
            if standing.state is State.FAILED and standing.current:
                stage, record = BY_KIND[self.graph.nodes[sid].kind], records[sid]
                lines = stage.failure_lines(record) if stage.failure_lines else []
                found.append(Failure(sid, stage.failure_means, lines or [standing.reason], stage.failure_exit))
        return found

    def problem(self, record: StageRecord, resource: bool) -> str | None:
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
    graph, chosen = estimating.with_concurrency(build_graph(loaded.recipe, loaded.suites), loaded, state.load(), store)
    return Project(loaded, state, store, graph, shared, concurrency=chosen)


def _resource(record: StageRecord) -> bool:
    """Whether a record stands for a running process (the server) rather than an artifact."""
    stage = BY_KIND.get(record.kind)
    return stage is not None and stage.stop is not None
