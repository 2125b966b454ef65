"""Config problems as data, so that every problem of a file can be reported at once.

The loader never stops at the first mistake: it collects a ``ConfigIssue`` per problem
(file, dotted path, line, message) and raises one ``ConfigError`` holding all of them,
so the user fixes the whole file in one round instead of one error per restart.
"""

from __future__ import annotations

import msgspec


class ConfigIssue(msgspec.Struct, frozen=True, kw_only=True):
    """One problem: where it is (file, ``strategies[1].target_volume``, line) and what."""

    file: str
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """Every problem found in one config file (``str()`` lists them one per line)."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))

    def __str__(self) -> str:
        return "\n".join(str(i) for i in self.issues)


def format_path(parts: tuple[str | int, ...]) -> str:
    """``("strategies", 1, "target_volume")`` -> ``strategies[1].target_volume``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
