"""Where each key of a TOML document is written, so an error can say `FILE:LINE:COL`.

TOML parsers return plain dicts without positions. This scanner walks a document that already parsed
and records, for every key path, the position of its key (or, for array items, of the value):

    [models.v2]                       ("models",) ("models", "v2")           -> line 1
    lora = { rank = 0 }               ("models", "v2", "lora", "rank")        -> line 2, col 10
    [[gates]]                         ("gates", 0)                            -> line 3
"""

from __future__ import annotations

Path = tuple[str | int, ...]
Position = tuple[int, int]

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _Scanner:
    def __init__(self, text: str):
        self.text = text
        self.i = 0
        self.positions: dict[Path, Position] = {}
        self.table_counts: dict[Path, int] = {}

    # -- low level -----------------------------------------------------------------------------
    def pos(self) -> Position:
        line = self.text.count("\n", 0, self.i) + 1
        col = self.i - (self.text.rfind("\n", 0, self.i) + 1) + 1
        return line, col

    def peek(self, n: int = 1) -> str:
        return self.text[self.i : self.i + n]

    def skip_space(self, newlines: bool = False) -> None:
        while self.i < len(self.text):
            c = self.text[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.i += 1
            elif c == "#":
                end = self.text.find("\n", self.i)
                self.i = len(self.text) if end < 0 else end
            else:
                return

    def record(self, path: Path, at: Position) -> None:
        for n in range(1, len(path) + 1):
            self.positions.setdefault(path[:n], at)

    def string(self) -> str:
        for quote in ('"""', "'''"):
            if self.peek(3) == quote:
                end = self.text.find(quote, self.i + 3)
                value = self.text[self.i + 3 : end]
                self.i = end + 3
                while self.peek() == quote[0]:  # """a"""" ends with extra quotes in the value
                    self.i += 1
                return value
        quote = self.text[self.i]
        self.i += 1
        out = []
        while self.i < len(self.text) and self.text[self.i] != quote:
            if quote == '"' and self.text[self.i] == "\\":
                out.append(self.text[self.i : self.i + 2])
                self.i += 2
                continue
            out.append(self.text[self.i])
            self.i += 1
        self.i += 1
        return "".join(out)

    def key(self) -> list[str]:
        parts = []
        while True:
            self.skip_space()
            if self.peek() in ('"', "'"):
                parts.append(self.string())
            else:
                start = self.i
                while self.i < len(self.text) and self.text[self.i] in _BARE:
                    self.i += 1
                parts.append(self.text[start : self.i])
            self.skip_space()
            if self.peek() != ".":
                return parts
            self.i += 1

    # -- values --------------------------------------------------------------------------------
    def value(self, path: Path) -> None:
        c = self.peek()
        if c == "{":
            self.i += 1
            while True:
                self.skip_space()
                if self.peek() == "}":
                    self.i += 1
                    return
                at = self.pos()
                sub = tuple(self.key())
                self.record(path + sub, at)
                self.i += 1  # '='
                self.skip_space()
                self.value(path + sub)
                self.skip_space()
                if self.peek() == ",":
                    self.i += 1
        elif c == "[":
            self.i += 1
            index = 0
            while True:
                self.skip_space(newlines=True)
                if self.peek() == "]":
                    self.i += 1
                    return
                self.record(path + (index,), self.pos())
                self.value(path + (index,))
                index += 1
                self.skip_space(newlines=True)
                if self.peek() == ",":
                    self.i += 1
        elif c in ('"', "'"):
            self.string()
        else:
            while self.i < len(self.text) and self.text[self.i] not in ",]}\n#":
                self.i += 1

    # -- document ------------------------------------------------------------------------------
    def header_path(self, names: list[str]) -> Path:
        """Resolve `[a.b]` through arrays of tables: `[[a]]` then `[a.b]` means a[last].b."""
        path: Path = ()
        for name in names:
            path = path + (name,)
            if path in self.table_counts:
                path = path + (self.table_counts[path] - 1,)
        return path

    def document(self) -> dict[Path, Position]:
        table: Path = ()
        while self.i < len(self.text):
            self.skip_space(newlines=True)
            if self.i >= len(self.text):
                break
            at = self.pos()
            if self.peek(2) == "[[":
                self.i += 2
                names = self.key()
                self.i += 2
                base = self.header_path(names[:-1]) + (names[-1],)
                self.table_counts[base] = self.table_counts.get(base, 0) + 1
                table = base + (self.table_counts[base] - 1,)
                self.record(table, at)
            elif self.peek() == "[":
                self.i += 1
                table = self.header_path(self.key())
                self.i += 1
                self.record(table, at)
            else:
                sub = tuple(self.key())
                self.record(table + sub, at)
                self.i += 1  # '='
                self.skip_space()
                self.value(table + sub)
        return self.positions


def key_positions(text: str) -> dict[Path, Position]:
    """Every key path of a valid TOML document, mapped to its (line, column), both 1-based."""
    return _Scanner(text).document()


def locate(positions: dict[Path, Position], path: Path) -> Position:
    """Position of `path`, or of its nearest written ancestor (a missing key points at its table)."""
    for n in range(len(path), 0, -1):
        if path[:n] in positions:
            return positions[path[:n]]
    return (1, 1)
