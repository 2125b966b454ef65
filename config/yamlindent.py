"""Indentation that lines up with nothing above it, in plain words (``misaligned``).

The parser notices a misaligned line late and says little (``expected <block end>``);
this names the line that is out of place and what to align it with. Three cases, tried in
turn: the line above is the odd one (shallower than the lines on both sides of it); the
keys of one block disagree (the first key, or this one, is the odd one); this line matches
no enclosing key or '-', and the nearest ones are named.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.yamllines import Finder, Line, Spot, name_of, short, spaces


def _chain(parsed: list[Line | None], at: int) -> list[Line]:
    """The lines above ``at`` that enclose it: the one just above, then each earlier line
    indented less than all after it (nearest first)."""
    out: list[Line] = []
    bound = 1 << 30
    for line in reversed(parsed[:at]):
        if line is not None and line.indent < bound:
            out.append(line)
            bound = line.indent
            if bound == 0:
                break
    return out


def misaligned(spot: Spot) -> Finder:
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


def _aligned_with_nothing(line: Line, chain: list[Line]) -> Finder:
    """A list item whose '-' is under no '-' above, or a key under no key above: name the
    nearest one(s) to align with."""
    keys: dict[int, Line] = {}  # column of a key -> the nearest line with a key there
    dashes: dict[int, Line] = {}  # column of a '-' -> the nearest list item there
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


def _item_misaligned(line: Line, anchor: Line) -> str:
    return (
        f"the list item '{short(line.text)}' is indented {spaces(line.indent)}; align its '-'"
        f" with the one on line {anchor.no} ({spaces(anchor.indent)})"
    )


def _key_misaligned(line: Line, near: list[Line], under_a_dash: bool) -> str:
    what = f"'{line.key}'" if line.key else f"'{short(line.text)}'"
    options = " or with ".join(
        f"'{a.key}' on line {a.no} ({spaces(a.key_col or 0)})" for a in near[:2]
    )
    item = " (or make it a list item: '- ...')" if under_a_dash and line.key else ""
    return (
        f"{what} is indented {spaces(line.indent)}, which lines up with no key above it:"
        f" align it with {options}{item}"
    )


def _before(parsed: list[Line | None], line: Line) -> Line | None:
    return next((p for p in reversed(parsed[: line.no - 1]) if p is not None), None)


def _dedented_above(parsed: list[Line | None], line: Line, above: Line) -> Finder:
    """The line above is the mistake: shallower than the lines on both sides of it, or
    at the indentation of the section it should be in (which it leaves empty)."""
    if above.opens or above.dash or line.indent <= above.indent:
        return None
    prior = _before(parsed, above)
    if prior is None or prior.dash:
        return None
    if prior.opens and prior.indent == above.indent:
        return above.no, (
            f"'{name_of(above)}' is at the same indentation as '{name_of(prior)}' on line"
            f" {prior.no}, which leaves '{name_of(prior)}' empty: indent it like"
            f" '{name_of(line)}' on line {line.no} ({spaces(line.indent)})"
        )
    if prior.indent == line.indent:
        return above.no, (
            f"'{name_of(above)}' is indented {spaces(above.indent)}, but the lines around it"
            f" ('{name_of(prior)}' on line {prior.no}, '{name_of(line)}' on line {line.no}) are at"
            f" {line.indent}: indent it like them"
        )
    return None


@dataclass(frozen=True)
class _Block:
    """The block a line is in (a section, or a list item) as far as the line."""

    parent: Line  # the line that opens it: `key:` or `- ...`
    first: Line  # its first key (the parent itself for `- key: ...`)
    col: int  # the column of that first key
    peers: int  # keys at that column before the line, the first one included

    def where(self) -> str:
        return "in this list item" if self.parent.dash else f"under '{name_of(self.parent)}'"


def _block_of(spot: Spot, line: Line, chain: list[Line]) -> _Block | None:
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


def _followers(spot: Spot, block: _Block, line: Line) -> int:
    """Keys after ``line`` in its block that are indented like it."""
    count = 0
    for p in spot.parsed[spot.at + 1 :]:
        if p is None:
            continue
        if p.indent <= block.parent.indent:
            break
        count += p.indent == line.indent and not p.dash
    return count


def _odd_in_block(spot: Spot, line: Line, chain: list[Line]) -> Finder:
    """Keys of one block (a section, or a list item) that do not align: the first key
    is the odd one when the keys after it agree with this line, else this line is."""
    block = _block_of(spot, line, chain)
    if block is None or block.col == line.indent:
        return None
    if block.peers == 1 and _followers(spot, block, line):
        return block.first.no, _first_key_odd(block, line)
    return line.no, (
        f"'{name_of(line)}' is indented {spaces(line.indent)}, but the keys before it"
        f" {block.where()} are indented {block.col} ('{name_of(block.first)}' on line"
        f" {block.first.no}): align it with them"
    )


def _first_key_odd(block: _Block, line: Line) -> str:
    first, col = block.first, block.col
    gap = line.indent - col
    fix = f"indent it {spaces(line.indent)} like them"
    if first is block.parent:  # `- key:` starts the item: move the key, not the dash
        fix = (
            f"indent its '-' {spaces(gap)} more"
            if gap > 0
            else (f"remove {spaces(-gap)} between the '-' and '{name_of(first)}'")
        )
    return (
        f"'{name_of(first)}' is indented {spaces(col)}, but the keys after it {block.where()}"
        f" are indented {line.indent} ('{name_of(line)}' on line {line.no}): {fix}"
    )
