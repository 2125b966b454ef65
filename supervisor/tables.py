"""The rich tables of the CLI: ``status`` (also ``status --watch`` and the live view of
``run`` and ``demo``), ``volumes`` and the demo's summary. Column headers, aligned
columns, and a layout that fits 80 columns. Every cell is text produced by
``supervisor.render``; printing goes through ``config.output`` (redacted).

rich is imported here only, and only by commands that render (see config/richguard.py).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from config.logsetup import redact
from config.richguard import allow_rich
from protocol import messages as m
from supervisor import render

allow_rich()
from rich import box  # noqa: E402
from rich.console import Console, Group, RenderableType  # noqa: E402
from rich.progress_bar import ProgressBar  # noqa: E402
from rich.table import Table  # noqa: E402
from rich.text import Text  # noqa: E402

BAR_WIDTH = 3
STATE_STYLE = {
    "RUNNING": "green",
    "DONE": "green",
    "FATAL": "bold red",
    "BACKOFF": "yellow",
    "STOPPING": "yellow",
}


def _table(*columns: tuple[str, str] | tuple[str, str, int]) -> Table:
    """Headers underlined, one space between columns, no outer frame; a column may
    have a minimum width (so that the tables of several strategies line up)."""
    table = Table(box=box.SIMPLE_HEAD, padding=0, show_edge=False, header_style="bold")
    for header, justify, *width in columns:
        table.add_column(
            header,
            justify=justify,  # type: ignore[arg-type]
            overflow="fold",
            min_width=width[0] if width else None,
        )
    return table


def progress(current: Decimal | None, target: Decimal) -> RenderableType:
    """A rich bar and the percentage, e.g. ``━━━━━━ 45%``."""
    if current is None or target <= 0:
        return Text("?")
    frac = min(Decimal(1), max(Decimal(0), current / target))
    cell = Table.grid(padding=(0, 1))
    cell.add_row(
        ProgressBar(total=100, completed=float(frac * 100), width=BAR_WIDTH),
        Text(f"{int(frac * 100):>3d}%"),
    )
    return cell


def status_view(reply: m.StatusReply) -> RenderableType:
    parts: list[RenderableType] = [Text(render.headline(reply))]
    for st in reply.strategies:
        parts.append(Text(""))
        parts.append(Text(render.strategy_line(st), style="bold"))
        if not st.selected and not st.users:
            continue
        table = _table(
            ("user", "left", 4),
            ("state", "left", 8),
            ("pid", "right", 7),
            ("volume", "right", 10),
            ("target", "right", 7),
            ("progress", "left", 8),
            ("batch", "right", 6),
            ("trades", "right", 6),
            ("cost", "right", 6),
            ("ETA", "right", 5),
        )
        notes: list[str] = []
        for u in st.users:
            table.add_row(
                u.user_id if u.node is None else f"{u.user_id} @{u.node}",
                Text(u.state, style=STATE_STYLE.get(u.state, "")),
                str(u.pid or "-"),
                render.volume(u.current_volume),
                render.target(u.target_volume),
                progress(u.current_volume, u.target_volume),
                render.batch(u),
                str(u.trades),
                render.money(u.cost_today),
                render.eta(u.eta_seconds) if render.shows_eta(u) else "-",
            )
            notes.extend(f"  user {u.user_id}: {note}" for note in render.user_notes(u))
        parts.append(table)
        ages = render.volume_ages(st.users)
        if ages:
            parts.append(Text(ages, overflow="fold"))
        # exchange text, redacted before rich may fold it over two lines (the output
        # stream redacts again, line by line)
        parts.extend(Text(redact(n), overflow="fold") for n in notes)
    points = points_table(reply)
    if points is not None:
        parts.extend([Text(""), points])
    parts.extend(Text(line) for line in render.pool_lines(reply))
    return Group(*parts)


def points_table(reply: m.StatusReply) -> RenderableType | None:
    """Per user (all strategies): today's points so far, cost, cost per point."""
    users: dict[str, list[m.UserStatus]] = {}
    for st in reply.strategies:
        for u in st.users:
            users.setdefault(u.user_id, []).append(u)
    rows = []
    for uid, us in users.items():
        if us[0].points_today is None:
            continue
        cost = sum((u.cost_today for u in us), Decimal(0))
        cpp = us[0].cost_per_point
        rows.append(
            [
                uid,
                str(us[0].points_today),
                render.money(cost),
                "-" if cpp is None else render.money(cpp),
            ]
        )
    if not rows:
        return None
    return summary_table(["user", "points today", "cost today", "USDT/point"], "lrrr", rows)


def volumes_table(results: Iterable[Any]) -> RenderableType:
    """``alphavol volumes``: one row per (strategy, user); errors below the table."""
    table = _table(
        ("strategy", "left"),
        ("user", "left"),
        ("token", "left"),
        ("volume", "right"),
        ("target", "right"),
        ("basis", "left"),
        ("progress", "left"),
        ("status", "left"),
    )
    notes = []
    for r in results:
        mark = "at target" if r.at_target else ("error" if r.error else "under")
        table.add_row(
            r.strategy_id,
            r.user_id,
            r.token,
            render.volume(r.current),
            render.target(r.target),
            r.basis,
            progress(r.current, r.target),
            Text(mark, style="red" if r.error else ""),
        )
        if r.error:
            note = f"  user {r.user_id} ({r.strategy_id}): {r.error}"
            notes.append(Text(redact(note), overflow="fold"))
    return Group(table, *notes)


def summary_table(headers: list[str], justify: str, rows: Iterable[Iterable[str]]) -> Table:
    """A plain table: ``justify`` has one letter per column (``l`` left, ``r`` right)."""
    table = _table(
        *((h, "right" if j == "r" else "left") for h, j in zip(headers, justify, strict=True))
    )
    for row in rows:
        table.add_row(*row)
    return table


def render_text(renderable: RenderableType, *, width: int = 80) -> str:
    """``renderable`` as plain text, ``width`` columns wide (no colours)."""
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, highlight=False).print(renderable)
    return buf.getvalue().rstrip("\n")
