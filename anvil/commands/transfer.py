"""`anvil push` and `anvil pull`: the project's artifacts to and from the remote store ([store] remote);
the remote itself, and the lookups plan and apply make in it, are state/remote.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from anvil.commands import command, open_project
from anvil.console import say
from anvil.errors import EXIT_ERROR, EXIT_OK, AnvilError
from anvil.planning.plan import Act

if TYPE_CHECKING:
    from anvil.state.remote import Transfer


def add_to(sub) -> None:
    command(sub, "push", push, "upload the project's artifacts to the remote store ([store] remote)")
    command(sub, "pull", pull, "download from the remote store what the plan would restore from it")


def push(args) -> int:
    done, url = push_all(open_project(args.recipe), args.recipe)
    transfer_line(done, "pushed", f"to {url}")
    return EXIT_OK


def pull(args) -> int:
    done, url = pull_needed(open_project(args.recipe), args.recipe)
    transfer_line(done, "pulled", f"from {url} into the run-cache")
    for line in done.failed:
        say(f"error: {line}", stderr=True)
    return EXIT_ERROR if done.failed else EXIT_OK


def _remote_of(project, recipe: str):
    if project.shared.remote is None:
        raise AnvilError(f"{recipe}: no remote store (set [store] remote in the recipe, or ANVIL_REMOTE)")
    return project.shared, project.shared.remote


def push_all(project, recipe: str) -> tuple[Transfer, str]:
    """`anvil push`: every artifact the project's state records (not its running server) the remote lacks."""
    shared, remote = _remote_of(project, recipe)
    records = [
        r
        for sid, r in project.state.load().items()
        if sid in project.graph.nodes and not project.graph.nodes[sid].resource
    ]
    return shared.push(project.store, records), remote.url


def pull_needed(project, recipe: str) -> tuple[Transfer, str]:
    """`anvil pull`: what the plan would restore from the remote, into the local run-cache (the next apply
    restores it from there)."""
    shared, remote = _remote_of(project, recipe)

    wanted = [a.fingerprint for a in project.plan().actions if a.act is Act.RESTORE and "remote" in a.reasons[-1]]
    if not wanted:
        shared.has("0" * 64)  # nothing planned from it, but is that because it cannot be reached?
    if shared.down:  # the plan could not look: "nothing to pull" would be a guess, not an answer
        raise AnvilError(f"cannot pull from {remote.url}: " + "; ".join(shared.warnings))
    return shared.pull(project.store, wanted), remote.url


def transfer_line(done, verb: str, where: str) -> None:
    rate = f", {done.bytes / 1e6 / done.seconds:.1f} MB/s" if done.seconds > 0 and done.bytes else ""
    already = f"; {len(done.present)} already there" if done.present else ""
    say(f"{verb} {len(done.moved)} artifacts ({done.bytes / 1e6:.1f} MB in {done.seconds:.1f}s{rate}) {where}{already}")
