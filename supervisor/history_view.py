"""``alphavol history`` as tables: one per user, a row per day and token, then the
user's totals over the window (points summed per day, as the exchange sums them)."""

from __future__ import annotations

from decimal import Decimal

from config.richguard import allow_rich
from supervisor import ledger
from supervisor.render import money
from supervisor.tables import summary_table

allow_rich()
from rich.console import Group, RenderableType  # noqa: E402
from rich.text import Text  # noqa: E402

HEADERS = ["day", "token", "trips", "bought", "credited", "pts", "exch", "cost", "cost/pt"]


def num(d: Decimal | None, places: str = "0.01") -> str:
    return "?" if d is None else f"{d.quantize(Decimal(places)):,f}"


def opt(x: object) -> str:
    return "-" if x is None else str(x)


def history_view(rows: list[ledger.LedgerRow], *, days: int) -> RenderableType:
    parts: list[RenderableType] = []
    for total in ledger.window_totals(rows):
        mine = [r for r in rows if r.user_id == total.user_id]
        lines = []
        for d in ledger.day_totals_of(mine):
            of_day = [r for r in mine if r.day == d.day]
            for r in of_day:
                lines.append(_line(r.day, r.token, r, r.points, r.exchange_points))
            if len(of_day) > 1:  # the day's points are those of the tokens' sum
                lines.append(_line(d.day, "(day)", d, d.points, d.exchange_points))
        parts.append(Text(f"user {total.user_id}", style="bold"))
        parts.append(summary_table(HEADERS, "llrrrrrrr", lines))
        exch = "" if total.exchange_points is None else f" (exchange: {total.exchange_points})"
        cpp = total.cost_per_point
        parts.append(
            Text(
                f"  last {days} days: {total.round_trips} round trips,"
                f" {num(total.bought_usdt)} USDT bought, {total.points} points{exch}\n"
                f"  cost {money(total.cost_usdt)} USDT"
                + ("" if cpp is None else f", {money(cpp)} USDT per point")
            )
        )
        parts.append(Text(""))
    return Group(*parts)


def _line(
    day: str,
    token: str,
    r: ledger.LedgerRow | ledger.DayTotal,
    points: int | None,
    exch: int | None,
) -> list[str]:
    cpp = ledger.per_point(r.cost_usdt, points)
    return [
        day,
        token,
        str(r.round_trips),
        num(r.bought_usdt),
        num(r.credited_volume),
        opt(points),
        opt(exch),
        money(r.cost_usdt),
        "-" if cpp is None else money(cpp),
    ]
