"""A YAML syntax error in plain words, at the line of the mistake.

PyYAML (and libyaml) say what their parser expected (``expected <block end>, but found
'<block mapping start>'``) and where it noticed, which is often the line after the
mistake: a key without its ':' is noticed on the next line. ``explain`` looks at the
text around the error's marks instead of the library's message (which differs between
the two parsers): a tab in the indentation, a quote or bracket never closed, a line
that is not ``key: value``, and above all indentation that lines up with nothing above
it, for which it names the line (or the two lines) to align with.
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
class _Line:
    no: int  # 1-based
    indent: int
    text: str  # without indentation and comment
    dash: bool  # a list item: `- ...`
    key: str | None  # the key it starts, after the dash if any
    key_col: int | None  # where that key starts
    content_col: int  # where the text after the dash (if any) starts
    opens: bool  # `key:` with nothing after it: a block follows


def _parse(no: int, raw: str) -> _Line | None:
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
    return _Line(no, indent, text, dash, key, col if (key or not dash) else None, col, opens)


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


def _char(lines: list[str], mark: yaml.Mark | None) -> str:
    if mark is None or mark.line >= len(lines) or mark.column >= len(lines[mark.line]):
        return ""
    return lines[mark.line][mark.column]


@dataclass(frozen=True)
class _Spot:
    """Where the parser stopped, and the text around it: what every finder looks at."""

    lines: list[str]
    parsed: list[_Line | None]  # each line parsed (None: blank, a comment, a tab)
    at: int  # the 0-based line of the problem mark
    pm: yaml.Mark  # where the parser noticed the problem
    cm: yaml.Mark | None  # what it was reading then (a quote, a bracket, a key), if it says

    @property
    def line(self) -> _Line | None:
        """The line of the problem mark, when it has content."""
        return self.parsed[self.at] if self.at < len(self.parsed) else None


# (1-based line of the mistake, what is wrong there and how to fix it), or None: not this
Finder = tuple[int, str] | None


def explain(text: str, exc: yaml.YAMLError) -> tuple[int | None, str]:
    """(1-based line of the mistake, what is wrong there and how to fix it)."""
    lines = text.splitlines()
    pm = getattr(exc, "problem_mark", None)
    cm = getattr(exc, "context_mark", None)
    if pm is None:
        return None, "the file is not valid YAML"
    at = min(pm.line, len(lines) - 1) if lines else 0
    spot = _Spot(lines, [_parse(i + 1, raw) for i, raw in enumerate(lines)], at, pm, cm)
    for why in (
        _tab,
        _unclosed,
        _alias,
        _no_colon_scanned,
        _no_colon,
        _misaligned,
        _colon_in_value,
    ):
        found = why(spot)
        if found:
            return found
    here = spot.parsed[at] if 0 <= at < len(spot.parsed) else None
    shown = here.text if here is not None else ""
    return at + 1, (
        f"'{_short(shown)}' does not fit the lines above it: check its indentation, and that"
        " each setting is written 'key: value' (a space after the colon)"
        if shown
        else "the file is not valid YAML here"
    )


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _tab(spot: _Spot) -> Finder:
    lines, at = spot.lines, spot.at
    for i in range(min(at, len(lines) - 1), -1, -1):
        lead = lines[i][: len(lines[i]) - len(lines[i].lstrip(" \t"))]
        if "\t" in lead:
            return i + 1, "indented with a tab; YAML indentation must be spaces only"
        if spot.parsed[i] is not None and i < at:
            break
    return None


def _unclosed(spot: _Spot) -> Finder:
    cm = spot.cm
    opener = _char(spot.lines, cm)
    if cm is None or not opener:
        return None
    if opener in ("'", '"'):
        return cm.line + 1, f"the quote {opener} opened here is never closed"
    if opener in ("[", "{"):
        closer = "]" if opener == "[" else "}"
        if spot.pm.line == cm.line:
            return cm.line + 1, (
                f"inside {opener}...{closer}, items must be separated by commas"
                f" (or the {closer} is missing)"
            )
        return cm.line + 1, f"the {opener} opened here is never closed: a {closer} is missing"
    return None


def _alias(spot: _Spot) -> Finder:
    pm = spot.pm
    if _char(spot.lines, pm) != "*":
        return None
    name = re.match(r"\*([^\s,\]}]*)", spot.lines[pm.line][pm.column :])
    alias = name.group(1) if name else ""
    return pm.line + 1, f"'*{alias}' refers to no anchor '&{alias}' above it"


def _spaces(n: int) -> str:
    return f"{n} space" + ("" if n == 1 else "s")


def _no_colon_scanned(spot: _Spot) -> Finder:
    """The scanner was reading a key on an earlier line and never found its ':'."""
    cm = spot.cm
    if cm is None or cm.line >= spot.pm.line:
        return None
    line = spot.parsed[cm.line] if cm.line < len(spot.parsed) else None
    if line is None or line.key is not None or _char(spot.lines, cm) in ("'", '"', "[", "{"):
        return None
    return line.no, _missing_colon(line)


def _missing_colon(line: _Line) -> str:
    return (
        f"'{_short(line.text)}' is not a 'key: value' pair: is the ':' missing, or the space"
        " after it?"
    )


def _chain(parsed: list[_Line | None], at: int) -> list[_Line]:
    """The lines above ``at`` that enclose it: the one just above, then each earlier line
    indented less than all after it (nearest first)."""
    out: list[_Line] = []
    bound = 1 << 30
    for line in reversed(parsed[:at]):
        if line is not None and line.indent < bound:
            out.append(line)
            bound = line.indent
            if bound == 0:
                break
    return out


def _misaligned(spot: _Spot) -> Finder:
    """Indentation that lines up with nothing above it. Three cases, tried in turn: the
    line above is the one out of place; the keys of this line's block disagree; this
    line (a key or a list item) matches no enclosing key or '-'."""
    line = spot.line
    chain = _chain(spot.parsed, spot.at)
    if line is None or not chain:
        return None
    if chain[0].opens and line.indent > chain[0].indent:
        return None  # the first line of the block that the line above opens
    if not line.dash:
        found = _dedented_above(spot.parsed, line, chain[0]) or _odd_in_block(spot, line, chain)
        if found:
            return found
    return _aligned_with_nothing(line, chain)


def _aligned_with_nothing(line: _Line, chain: list[_Line]) -> Finder:
    """A list item whose '-' is under no '-' above, or a key under no key above: name the
    nearest one(s) to align with."""
    keys: dict[int, _Line] = {}  # column of a key -> the nearest line with a key there
    dashes: dict[int, _Line] = {}  # column of a '-' -> the nearest list item there
    for c in chain:
        if c.dash:
            dashes.setdefault(c.indent, c)
        if c.key is not None and c.key_col is not None:
            keys.setdefault(c.key_col, c)
    levels = dashes if line.dash and dashes else keys
    if not levels or line.indent in levels or (line.dash and line.indent in keys):
        return None
    best = min(abs(col - line.indent) for col in levels)
    near = [levels[col] for col in sorted(levels, reverse=True) if abs(col - line.indent) == best]
    if line.dash:
        return line.no, _item_misaligned(line, near[0])
    return line.no, _key_misaligned(line, near, line.indent in dashes)


def _item_misaligned(line: _Line, anchor: _Line) -> str:
    return (
        f"the list item '{_short(line.text)}' is indented {_spaces(line.indent)}; align its '-'"
        f" with the one on line {anchor.no} ({_spaces(anchor.indent)})"
    )


def _key_misaligned(line: _Line, near: list[_Line], under_a_dash: bool) -> str:
    what = f"'{line.key}'" if line.key else f"'{_short(line.text)}'"
    options = " or with ".join(
        f"'{a.key}' on line {a.no} ({_spaces(a.key_col or 0)})" for a in near[:2]
    )
    item = " (or make it a list item: '- ...')" if under_a_dash and line.key else ""
    return (
        f"{what} is indented {_spaces(line.indent)}, which lines up with no key above it:"
        f" align it with {options}{item}"
    )


def _name(line: _Line) -> str:
    return line.key if line.key is not None else _short(line.text)


def _before(parsed: list[_Line | None], line: _Line) -> _Line | None:
    return next((p for p in reversed(parsed[: line.no - 1]) if p is not None), None)


def _dedented_above(parsed: list[_Line | None], line: _Line, above: _Line) -> Finder:
    """The line above is the mistake: shallower than the lines on both sides of it, or
    at the indentation of the section it should be in (which it leaves empty)."""
    if above.opens or above.dash or line.indent <= above.indent:
        return None
    prior = _before(parsed, above)
    if prior is None or prior.dash:
        return None
    if prior.opens and prior.indent == above.indent:
        return above.no, (
            f"'{_name(above)}' is at the same indentation as '{_name(prior)}' on line"
            f" {prior.no}, which leaves '{_name(prior)}' empty: indent it like"
            f" '{_name(line)}' on line {line.no} ({_spaces(line.indent)})"
        )
    if prior.indent == line.indent:
        return above.no, (
            f"'{_name(above)}' is indented {_spaces(above.indent)}, but the lines around it"
            f" ('{_name(prior)}' on line {prior.no}, '{_name(line)}' on line {line.no}) are at"
            f" {line.indent}: indent it like them"
        )
    return None


@dataclass(frozen=True)
class _Block:
    """The block a line is in (a section, or a list item) as far as the line."""

    parent: _Line  # the line that opens it: `key:` or `- ...`
    first: _Line  # its first key (the parent itself for `- key: ...`)
    col: int  # the column of that first key
    peers: int  # keys at that column before the line, the first one included

    def where(self) -> str:
        return "in this list item" if self.parent.dash else f"under '{_name(self.parent)}'"


def _block_of(spot: _Spot, line: _Line, chain: list[_Line]) -> _Block | None:
    parent = next((c for c in chain if (c.opens or c.dash) and c.indent < line.indent), None)
    if parent is None:
        return None
    between = [p for p in spot.parsed[parent.no : spot.at] if p is not None]
    if parent.dash and parent.key is not None and parent.key_col is not None:
        first, col = parent, parent.key_col
    elif between:
        col = min(p.indent for p in between)
        first = next(p for p in between if p.indent == col)
    else:
        return None
    peers = sum(1 for p in between if p.indent == col) + (first is parent)
    return _Block(parent, first, col, peers)


def _followers(spot: _Spot, block: _Block, line: _Line) -> int:
    """Keys after ``line`` in its block that are indented like it."""
    count = 0
    for p in spot.parsed[spot.at + 1 :]:
        if p is None:
            continue
        if p.indent <= block.parent.indent:
            break
        count += p.indent == line.indent and not p.dash
    return count


def _odd_in_block(spot: _Spot, line: _Line, chain: list[_Line]) -> Finder:
    """Keys of one block (a section, or a list item) that do not align: the first key
    is the odd one when the keys after it agree with this line, else this line is."""
    block = _block_of(spot, line, chain)
    if block is None or block.col == line.indent:
        return None
    if block.peers == 1 and _followers(spot, block, line):
        return block.first.no, _first_key_odd(block, line)
    return line.no, (
        f"'{_name(line)}' is indented {_spaces(line.indent)}, but the keys before it"
        f" {block.where()} are indented {block.col} ('{_name(block.first)}' on line"
        f" {block.first.no}): align it with them"
    )


def _first_key_odd(block: _Block, line: _Line) -> str:
    first, col = block.first, block.col
    gap = line.indent - col
    fix = f"indent it {_spaces(line.indent)} like them"
    if first is block.parent:  # `- key:` starts the item: move the key, not the dash
        fix = (
            f"indent its '-' {_spaces(gap)} more"
            if gap > 0
            else (f"remove {_spaces(-gap)} between the '-' and '{_name(first)}'")
        )
    return (
        f"'{_name(first)}' is indented {_spaces(col)}, but the keys after it {block.where()}"
        f" are indented {line.indent} ('{_name(line)}' on line {line.no}): {fix}"
    )


def _no_colon(spot: _Spot) -> Finder:
    """The line above, at this line's indentation, has no ':' (noticed here)."""
    line = spot.line
    above = next((p for p in reversed(spot.parsed[: spot.at]) if p is not None), None)
    if line is None or above is None or above.key is not None or line.dash:
        return None
    if above.indent == line.indent and not above.dash:
        return above.no, _missing_colon(above)
    if above.dash and above.content_col == line.indent:  # `- user_id 1` then a key
        return above.no, _missing_colon(above)
    return None


def _colon_in_value(spot: _Spot) -> Finder:
    line, pm = spot.line, spot.pm
    if line is None or line.key is None or line.key_col is None or pm.line != spot.at:
        return None
    if _char(spot.lines, pm) != ":":
        return None
    if pm.column > line.key_col + len(line.key) + 1:
        return line.no, (
            f"the value of '{line.key}' contains ': '; put the value in quotes"
            f' ({line.key}: "...")'
        )
    return None
