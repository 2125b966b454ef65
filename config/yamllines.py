"""A config's lines as the YAML error finders (``config.yamlerrors``) see them.

Each line of content is parsed on its own: its indentation, whether it is a list item
(``- ...``), the key it starts and where, and whether it opens a block (``key:`` with
nothing after it). ``Spot`` is where the parser stopped, with the text around it: what
every finder looks at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

# `key:` or `key: value` (plain or quoted key), after an optional `- `
_KEY_RE = re.compile(
    r"""^(?P<key>"[^"]*"|'[^']*'|[^\s#'"\[\]{},:&*!|>%@`-][^#]*?|-[^\s#]*?)\s*:(\s|$)"""
)


@dataclass(frozen=True)
class Line:
    """One line of content, as far as indentation goes."""

    no: int  # 1-based
    indent: int
    text: str  # without indentation and comment
    dash: bool  # a list item: `- ...`
    key: str | None  # the key it starts, after the dash if any
    key_col: int | None  # where that key starts
    content_col: int  # where the text after the dash (if any) starts
    opens: bool  # `key:` with nothing after it: a block follows


def parse_line(no: int, raw: str) -> Line | None:
    """A line of content (None: blank, a comment, or indented with a tab)."""
    stripped = raw.lstrip(" ")
    if not stripped.strip() or stripped.startswith("#") or stripped.startswith("\t"):
        return None
    indent = len(raw) - len(stripped)
    text = _without_comment(stripped).rstrip()
    dash = text == "-" or text.startswith("- ")
    rest = text[1:].lstrip(" ") if dash else text
    col = indent + len(text) - len(rest)
    m = _KEY_RE.match(rest)
    key = m.group("key").strip("'\"") if m else None
    opens = m is not None and not rest[m.end() :].strip()
    return Line(no, indent, text, dash, key, col if (key or not dash) else None, col, opens)


def _without_comment(text: str) -> str:
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"" and (i == 0 or text[i - 1] in " :-[{,"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i]
    return text


def char_at(lines: list[str], mark: yaml.Mark | None) -> str:
    if mark is None or mark.line >= len(lines) or mark.column >= len(lines[mark.line]):
        return ""
    return lines[mark.line][mark.column]


@dataclass(frozen=True)
class Spot:
    """Where the parser stopped, and the text around it: what every finder looks at."""

    lines: list[str]
    parsed: list[Line | None]  # each line parsed (None: blank, a comment, a tab)
    at: int  # the 0-based line of the problem mark
    pm: yaml.Mark  # where the parser noticed the problem
    cm: yaml.Mark | None  # what it was reading then (a quote, a bracket, a key), if it says

    @property
    def line(self) -> Line | None:
        """The line of the problem mark, when it has content."""
        return self.parsed[self.at] if self.at < len(self.parsed) else None


# (1-based line of the mistake, what is wrong there and how to fix it), or None: not this
Finder = tuple[int, str] | None


def short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def spaces(n: int) -> str:
    return f"{n} space" + ("" if n == 1 else "s")


def name_of(line: Line) -> str:
    return line.key if line.key is not None else short(line.text)
