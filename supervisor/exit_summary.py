"""What ``alphavol run`` prints when it ends: per user and strategy its state, the last
volume read from the exchange (rounded, with how long before the end it was read), the
strategy's round trips and cost and why it ended; then per user the day as ``history``
shows it (round trips, cost, points, USDT per point: ``supervisor.books_today``)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from supervisor.records import row_reason
from supervisor.render import age, money

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter

CENT = Decimal("0.01")


def rounded(d: Decimal | None) -> str:
    """``3192.68``; ``300`` for a whole number; ``?`` when unknown."""
    if d is None:
        return "?"
    q = d.quantize(CENT)
    return f"{q.to_integral_value():f}" if q == q.to_integral_value() else f"{q:f}"


def summary_lines(arb: Arbiter) -> list[str]:
    out = [f"alphavol summary for {arb.day}:"]
    now, mono = arb.clock.time(), arb.mono()
    for rec in arb.records.values():
        day = None
        for row in rec.rows.values():
            u = arb.observer.today.status(rec, row, now=mono)
            day = u if u.user_round_trips is not None else day
            read = "" if row.volume_at is None else f" (read {age(row.volume_at, now)} ago)"
            why = row_reason(rec, row)
            out.append(
                f"  user {rec.user_id} {row.settings.strategy_id}: {u.state}"
                f" volume {rounded(row.current_volume)}/{rounded(row.target)}{read}"
                f" trades {u.trades} cost {money(u.cost_today)} USDT restarts {rec.restarts}"
                + (f" ({why})" if why else "")
            )
        if day is not None and day.user_round_trips:
            pts = "?" if day.points_today is None else day.points_today
            cpp = day.cost_per_point
            out.append(
                f"  user {rec.user_id} today: {day.user_round_trips} round trips,"
                f" cost {money(day.user_cost_today or Decimal(0))} USDT, {pts} points"
                + ("" if cpp is None else f", {money(cpp)} USDT/point")
            )
    return out
