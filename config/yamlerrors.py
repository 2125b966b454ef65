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

import yaml

from config.yamlindent import misaligned
from config.yamllines import Finder, Line, Spot, char_at, parse_line, short


def explain(text: str, exc: yaml.YAMLError) -> tuple[int | None, str]:
    """(1-based line of the mistake, what is wrong there and how to fix it)."""
    lines = text.splitlines()
    pm = getattr(exc, "problem_mark", None)
    cm = getattr(exc, "context_mark", None)
    if pm is None:
        return None, "the file is not valid YAML"
    at = min(pm.line, len(lines) - 1) if lines else 0
    spot = Spot(lines, [parse_line(i + 1, raw) for i, raw in enumerate(lines)], at, pm, cm)
    for why in (
        _tab,
        _unclosed,
        _alias,
        _no_colon_scanned,
        _no_colon,
        misaligned,
        _colon_in_value,
    ):
        found = why(spot)
        if found:
            return found
    here = spot.parsed[at] if 0 <= at < len(spot.parsed) else None
    shown = here.text if here is not None else ""
    return at + 1, (
        f"'{short(shown)}' does not fit the lines above it: check its indentation, and that"
        " each setting is written 'key: value' (a space after the colon)"
        if shown
        else "the file is not valid YAML here"
    )


def _tab(spot: Spot) -> Finder:
    lines, at = spot.lines, spot.at
    for i in range(min(at, len(lines) - 1), -1, -1):
        lead = lines[i][: len(lines[i]) - len(lines[i].lstrip(" \t"))]
        if "\t" in lead:
            return i + 1, "indented with a tab; YAML indentation must be spaces only"
        if spot.parsed[i] is not None and i < at:
            break
    return None


def _unclosed(spot: Spot) -> Finder:
    cm = spot.cm
    opener = char_at(spot.lines, cm)
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


def _alias(spot: Spot) -> Finder:
    pm = spot.pm
    if char_at(spot.lines, pm) != "*":
        return None
    name = re.match(r"\*([^\s,\]}]*)", spot.lines[pm.line][pm.column :])
    alias = name.group(1) if name else ""
    return pm.line + 1, f"'*{alias}' refers to no anchor '&{alias}' above it"


def _no_colon_scanned(spot: Spot) -> Finder:
    """The scanner was reading a key on an earlier line and never found its ':'."""
    cm = spot.cm
    if cm is None or cm.line >= spot.pm.line:
        return None
    line = spot.parsed[cm.line] if cm.line < len(spot.parsed) else None
    if line is None or line.key is not None or char_at(spot.lines, cm) in ("'", '"', "[", "{"):
        return None
    return line.no, _missing_colon(line)


def _missing_colon(line: Line) -> str:
    return (
        f"'{short(line.text)}' is not a 'key: value' pair: is the ':' missing, or the space"
        " after it?"
    )


def _no_colon(spot: Spot) -> Finder:
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


def _colon_in_value(spot: Spot) -> Finder:
    line, pm = spot.line, spot.pm
    if line is None or line.key is None or line.key_col is None or pm.line != spot.at:
        return None
    if char_at(spot.lines, pm) != ":":
        return None
    if pm.column > line.key_col + len(line.key) + 1:
        return line.no, (
            f"the value of '{line.key}' contains ': '; put the value in quotes"
            f' ({line.key}: "...")'
        )
    return None
