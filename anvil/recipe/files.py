"""Why a path a recipe names cannot be read as an input file, said before anything opens it: a folder, a
device (`/dev/zero` reads forever), a pipe or a symlink loop is refused by name, as is a recipe too large
to be one."""

from __future__ import annotations

import errno
import stat
from pathlib import Path

MAX_TOML_BYTES = 16 << 20  # a recipe or a suite's test file; the largest real one is a few kB


def not_a_file(path: Path) -> str | None:
    """What is wrong with `path` as a file to read ("does not exist", "is a symlink loop", "is not a
    regular file", ...), or None."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return "does not exist"
    except OSError as e:
        return "is a symlink loop" if e.errno == errno.ELOOP else f"cannot be read ({e.strerror or e})"
    return None if stat.S_ISREG(found.st_mode) else "is not a regular file"
