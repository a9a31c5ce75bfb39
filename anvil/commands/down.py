"""`anvil down`: stop the server `apply` keeps running (and clear what a killed anvil left behind)."""

from __future__ import annotations

from anvil.commands import command, open_project
from anvil.console import err, say
from anvil.errors import EXIT_OK


def add_to(sub) -> None:
    command(sub, "down", run, "stop the server that apply keeps running, and clear what a killed apply left")


def run(args) -> int:
    project = open_project(args.recipe)
    stopped = project.down()
    for sid in project.forgotten:
        err().print(
            f"{sid}: its recorded process was started by another project (this state was copied); "
            "forgot the record, signalled nothing",
            markup=False,
        )
    for sid in project.gone:
        say(
            f"{sid}: its recorded process was no longer running (a process with its pid, if any, is not "
            "Anvil's); cleared the record, signalled nothing"
        )
    if stopped or not (project.forgotten or project.gone):
        say(f"stopped {', '.join(stopped)}" if stopped else "nothing running")
    return EXIT_OK
