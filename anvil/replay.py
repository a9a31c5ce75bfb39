"""A no-op `anvil plan` (or a repeated `anvil validate`), answered again without loading anything heavy.

A plan is a pure function of files (the recipe, the data, the recorded state, the store's artifacts, Anvil's
own code) and of the processes it serves. A full `plan` records every path it looked at (stat, open, folder
listing, through an audit hook and a wrapped `os.stat`) and, when it allows it, keeps its output with the
signature of each of those paths. The next identical `plan` (same arguments, folder, environment, terminal)
re-stats them and re-checks each served process (same pid, start time and command, answering on its health
URL): if every signature and process is as recorded, the kept output is the answer; otherwise the full plan
runs. This module imports the standard library only (psutil, for the process check) so that the answer
costs a Python start-up, not pydantic's.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import stat
import sys
import time
from argparse import Namespace
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

FORMAT = 1
RACY_S = 2.0  # a file changed this recently may change again within its mtime's resolution: keep nothing
_IGNORED = ("/proc/", "/sys/", "/dev/")
_ENVIRONMENT = ("NO_COLOR", "FORCE_COLOR", "TERM", "COLORTERM", "COLUMNS", "LINES", "TTY_COMPATIBLE")


def _signature(path: str, listed: bool) -> list[Any] | None:
    """What must stay the same: a file's identity, size and mtime; a folder's type, and its mtime (which moves
    when an entry is added, removed or renamed) if its entries were listed; a link's target."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return ["link", os.readlink(path)]
    if stat.S_ISDIR(st.st_mode):
        return ["dir", st.st_mtime_ns if listed else 0]
    return ["file", st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode]


def _code_paths() -> dict[str, bool]:
    """Anvil's own source files, and the installed packages' folder listed (an install or upgrade renames its
    entries): a change to either may change the answer."""
    import sysconfig

    here = Path(__file__).parent
    return {**{str(p): False for p in sorted(here.rglob("*.py"))}, sysconfig.get_paths()["purelib"]: True}


def key(argv: list[str]) -> str:
    """Everything besides files that a plan's printed answer depends on."""

    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        memory = 0
    facts = {
        "format": FORMAT, "argv": argv, "cwd": os.getcwd(), "python": sys.executable, "host": socket.gethostname(),
        "env": {k: v for k, v in os.environ.items() if k.startswith("ANVIL_") or k in _ENVIRONMENT},
        "tty": [sys.stdout.isatty(), sys.stderr.isatty()], "size": tuple(shutil.get_terminal_size()),
        "memory": memory,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:24]


def memo_for(argv: list[str], args: Namespace) -> Path | None:
    """Where the answer of this command line (`args` as parsed) is kept, if it is one whose answer may be kept
    (and replaying is not turned off): found once per run, read by `answer`, written by `recording`."""
    recipe = _eligible(args)
    if recipe is None or os.environ.get("ANVIL_REPLAY") == "off":
        return None
    from anvil.state import state_folder

    try:
        return state_folder(Path(recipe)) / "replay" / f"{argv[0]}-{key(argv)}.json"
    except (OSError, ValueError):  # a path that cannot be resolved: the full command says why
        return None


def _eligible(args: Namespace) -> str | None:
    """The recipe of a `plan` or `validate` whose answer may be kept: not a plan that writes a saved plan."""
    if args.command == "validate":
        from anvil.arguments import DEFAULT_RECIPE

        return args.recipes[0] if args.recipes else DEFAULT_RECIPE
    return args.recipe if args.command == "plan" and not args.out else None


def answer(memo_file: Path | None) -> int | None:
    """The kept answer's exit code, with its output written, if it still holds; None: run the full plan."""
    if memo_file is None:
        return None
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        return None
    try:
        if memo.get("format") != FORMAT or any(_signature(p, listed) != sig for p, listed, sig in memo["watched"]):
            return None
        if not all(_still_serving(p) for p in memo["probes"]):
            return None
        code = int(memo["exit"])
        streams = {"stdout": sys.stdout, "stderr": sys.stderr}
        output = [(streams[name], str(text)) for name, text in memo["output"]]
    except (AttributeError, KeyError, TypeError, ValueError):  # a damaged answer is no answer
        return None
    for stream, text in output:
        stream.write(text)
        stream.flush()
    return code


def _still_serving(probe: dict[str, Any]) -> bool:
    from anvil.backends import process
    from anvil.backends.health import answers, bearer

    key = os.environ.get(probe["key_env"]) if probe["key_env"] else None
    if probe["key_env"] and not key:
        return False  # the full command says the key is missing
    return process.is_ours(process.Owned.from_json(probe["process"])) and answers(probe["url"], bearer(key))


class _Tee(io.TextIOBase):
    """A stream that writes through and keeps what it wrote in `kept`, shared by stdout and stderr so that their
    order is kept too; a terminal's facts (isatty, encoding) are the stream's."""

    def __init__(self, stream: TextIO, name: str, kept: list[list[str]]):
        self.stream, self.name, self.kept = stream, name, kept

    def write(self, text: str) -> int:
        self.kept.append([self.name, text])
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.stream.encoding


class _Recording:
    def __init__(self) -> None:
        self.on = True
        self.seen: dict[str, bool] = {}  # path -> whether its entries were listed
        self.probes: list[dict[str, Any]] | None = None  # set by `allow`: the answer may be kept

    def note(self, path: Any, listed: bool = False) -> None:
        if not self.on or isinstance(path, int) or path is None:
            return
        try:
            full = os.path.abspath(os.fsdecode(os.fspath(path)))
        except TypeError:
            return
        if not full.startswith(_IGNORED):
            self.seen[full] = self.seen.get(full, False) or listed

    def hook(self, event: str, args: tuple) -> None:
        if not self.on:
            return
        if event == "open" and args:
            self.note(args[0])
        elif event in ("os.listdir", "os.scandir") and args:
            self.note(args[0] if args[0] is not None else ".", listed=True)


_recording: _Recording | None = None


def allow(probes: list[dict[str, Any]]) -> None:
    """Called by the full plan when its answer may be kept; `probes`: the served processes to re-check."""
    if _recording is not None:
        _recording.probes = probes


@contextmanager
def recording(memo_file: Path | None):
    """Run a full plan under observation; `finish(exit code)` keeps its answer in `memo_file` if `allow` was
    called."""
    global _recording
    if memo_file is None:
        yield lambda code: None
        return
    rec = _recording = _Recording()
    sys.addaudithook(rec.hook)  # hooks cannot be removed: `rec.on` turns it off
    real_stat, real_lstat = os.stat, os.lstat

    def watched_stat(path, *args, **kwargs):
        rec.note(path)
        return real_stat(path, *args, **kwargs)

    def watched_lstat(path, *args, **kwargs):
        rec.note(path)
        return real_lstat(path, *args, **kwargs)

    out, err, output = sys.stdout, sys.stderr, list[list[str]]()
    sys.stdout, sys.stderr = _Tee(out, "stdout", output), _Tee(err, "stderr", output)
    os.stat, os.lstat = watched_stat, watched_lstat  # type: ignore[assignment]
    try:
        yield lambda code: _keep(rec, memo_file, code, output)
    finally:
        os.stat, os.lstat = real_stat, real_lstat  # type: ignore[assignment]
        sys.stdout, sys.stderr = out, err
        rec.on = False
        _recording = None


def _keep(rec: _Recording, target: Path, code: int, output: list[list[str]]) -> None:
    rec.on = False
    if rec.probes is None or code not in (0, 2):
        return
    try:
        target.parent.mkdir(exist_ok=True)
        seen = {**rec.seen, **_code_paths()}
        seen.pop(str(target.parent), None)
        signatures = {path: _signature(path, listed) for path, listed in sorted(seen.items())}
        now = time.time_ns()
        if any(sig and sig[0] == "file" and now - sig[3] < RACY_S * 1e9 for sig in signatures.values()):
            target.unlink(missing_ok=True)
            return
        from anvil.state.atomic import write_json

        write_json(target, {"format": FORMAT, "exit": code, "output": output,
                            "watched": [[path, seen[path], sig] for path, sig in signatures.items()],
                            "probes": rec.probes})  # fmt: skip
    except (OSError, ValueError):
        pass  # a folder that cannot be written keeps no answer; the answer itself was given
