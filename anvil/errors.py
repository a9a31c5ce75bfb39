"""One error tree. The CLI catches `AnvilError` alone and prints its message; anything else is a bug."""

from __future__ import annotations

import errno
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

# Exit codes, documented in the README. 2 is Terraform's "changes pending" for `plan --detailed-exitcode`.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_GATES = 3
EXIT_INTERRUPTED = 130


class AnvilError(Exception):
    """An error the user can act on; `str()` is the whole message."""

    exit_code = EXIT_ERROR


def first_error(e: ValidationError) -> tuple[str, str]:
    """Where pydantic's first complaint is (its key path, dotted; "" at the top) and what it says."""
    first = e.errors()[0]
    return ".".join(str(part) for part in first["loc"]), first["msg"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, already located: `FILE:LINE:COL: key.path: message`."""

    file: str
    line: int
    col: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class InvalidInput(AnvilError):
    """A recipe or data file failed validation; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Unwritable(AnvilError, OSError):
    """A file Anvil writes could not be written: the path and the cause (a full disk, a read-only file
    system, permissions), never a traceback; what was there before is left as it was. Still an OSError, so
    that a cache whose write fails is skipped as before."""

    def __init__(self, path: object, error: OSError):
        self.message = f"{path}: cannot write it: {file_system_cause(error)}"
        OSError.__init__(self, error.errno, self.message, str(path))

    def __str__(self) -> str:
        return self.message


def file_system_cause(error: OSError) -> str:
    """An OSError as its cause, in words: the full disk or the read-only file system it means."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full (no space left on the device); free some space and run the command again"
    if error.errno == errno.EROFS:
        return "the file system is read-only; use a store on a writable one (ANVIL_STORE)"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return error.strerror or str(error)


class StoreLocked(AnvilError):
    """Another live process holds the store's lock."""


class StalePlan(AnvilError):
    """A saved plan no longer matches what it was made from; nothing ran."""

    def __init__(self, changed: list[str]):
        self.changed = changed
        super().__init__(
            "the saved plan is stale, nothing was applied; changed since it was made:\n  "
            + "\n  ".join(changed)
            + "\nMake and review a new one: `anvil plan -out FILE`"
        )


class StageFailed(AnvilError):
    """A stage raised while running; what finished stays recorded. `applied`: what the apply did (the
    executor's Applied), when the rest of the plan went on."""

    applied: Any = None


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Python runs so that every `finally` stops what it started."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @staticmethod
    def raise_it(signum, frame):
        """The signal handler `main` installs."""
        raise Stopped(signum)
