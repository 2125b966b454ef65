"""The rich tables of the CLI: ``status`` (also ``status --watch`` and the live view of
``run`` and ``demo``), ``volumes`` and the demo's summary. Column headers, aligned
columns, and a layout that fits 80 columns. Every cell is text produced by
``supervisor.render``; printing goes through ``config.output`` (redacted).

rich is imported here only, and only by commands that render (see config/richguard.py).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from config.logsetup import redact
from config.output import age_text
from config.richguard import allow_rich
from protocol import messages as m
from supervisor import render
from supervisor.states import RowState

allow_rich()
from rich import box  # noqa: E402
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult  # noqa: E402
from rich.progress_bar import ProgressBar  # noqa: E402
from rich.table import Table  # noqa: E402
from rich.text import Text  # noqa: E402

BAR_WIDTH = 3
STATE_STYLE: dict[str, str] = {
    RowState.RUNNING: "green",
    RowState.DONE: "green",
    RowState.FATAL: "bold red",
    RowState.BACKOFF: "yellow",
    RowState.STOPPING: "yellow",
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


def progress(current: Decimal | None, target: Decimal, *, bar: bool = True) -> RenderableType:
    """A rich bar and the percentage, e.g. ``━━━━━━ 45%`` (``bar=False``: ``45%``)."""
    if current is None or target <= 0:
        return Text("?")
    frac = min(Decimal(1), max(Decimal(0), current / target))
    pct = Text(f"{int(frac * 100):>3d}%")
    if not bar:
        return pct
    cell = Table.grid(padding=(0, 1))
    cell.add_row(ProgressBar(total=100, completed=float(frac * 100), width=BAR_WIDTH), pct)
    return cell


WIDE = 110  # from this many columns on, the table also shows pids, bars and costs


def status_view(reply: m.StatusReply) -> RenderableType:
    """The status as tables that fit the console they are printed on: at 80x24, the
    headline, each user's day (round trips, cost, points, USDT per point), then one line
    per strategy and a table of its users (a strategy not traded: its line only)."""
    return StatusView(reply)


class StatusView:
    def __init__(self, reply: m.StatusReply) -> None:
        self.reply = reply

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        reply, wide = self.reply, options.max_width >= WIDE
        yield one_line(render.headline(reply))
        today = today_table(reply)
        if today is not None:
            yield Text("")
            yield today
        for st in reply.strategies:
            yield Text("")
            yield one_line(render.strategy_line(st), style="bold")
            if render.is_traded(st):
                yield from strategy_table(st, wide=wide)
        for line in render.pool_lines(reply):  # a pool (store:): its nodes
            yield one_line(line)


def one_line(text: str, style: str = "") -> Text:
    """A line that never wraps (cut with an ellipsis instead)."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def strategy_table(st: m.StrategyStatus, *, wide: bool) -> Iterable[RenderableType]:
    """Narrow (80 columns): no pid, the percentage without a bar, and no cost column (the
    user's cost is in the table of the day, the strategy's on its line)."""
    table = _table(
        ("user", "left", 4),
        ("state", "left", 8),
        *((("pid", "right", 7),) if wide else ()),
        ("volume", "right", 10),
        ("read", "right", 4),
        ("+unconf", "right", 7),
        ("target", "right", 6),
        ("progress", "left", 8) if wide else ("done", "right", 4),
        ("batch", "right", 5),
        ("trades", "right", 6),
        *((("cost", "right", 6),) if wide else ()),
        ("ETA", "right", 6),
    )
    notes: list[str] = []
    for u in st.users:
        table.add_row(
            u.user_id if u.node is None else f"{u.user_id} @{u.node}",
            Text(u.state, style=STATE_STYLE.get(u.state, "")),
            *((str(u.pid or "-"),) if wide else ()),
            render.volume(u.current_volume),
            render.age(u.volume_at),
            render.unconfirmed(u),
            render.target(u.target_volume),
            progress(render.with_unconfirmed(u), u.target_volume, bar=wide),
            render.batch(u),
            str(u.trades),
            *((render.money(u.cost_today),) if wide else ()),
            render.eta(u.eta_seconds) if render.shows_eta(u) else "-",
        )
        notes.extend(f"  user {u.user_id}: {note}" for note in render.user_notes(u))
    yield table
    # exchange text, redacted before rich may fold it over two lines (the output
    # stream redacts again, line by line)
    yield from (Text(redact(n), overflow="fold") for n in notes)


def today_table(reply: m.StatusReply) -> RenderableType | None:
    """Per user (all strategies), today as ``alphavol history`` shows it: round trips,
    cost, points and USDT per point (from the books)."""
    users: dict[str, m.UserStatus] = {}
    for st in reply.strategies:
        for u in st.users:
            if u.user_round_trips is not None:
                users.setdefault(u.user_id, u)
    if not users:
        return None
    rows = [
        [
            uid,
            str(u.user_round_trips),
            render.money(u.user_cost_today or Decimal(0)),
            "?" if u.points_today is None else str(u.points_today),
            "-" if u.cost_per_point is None else render.money(u.cost_per_point),
            "-" if u.session_stored_at is None else age_text(time.time() - u.session_stored_at),
        ]
        for uid, u in users.items()
    ]
    headers = ["user", "round trips", "cost today", "points", "USDT/point", "session"]
    return summary_table(headers, "lrrrrr", rows)


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
