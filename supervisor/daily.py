"""The daily summary: once after each UTC day ends, per user, the day's volume against
its target, points (ours and the exchange's), round trips, cost and cost per point.

It watches the supervisor's clock on its own (a check a second), apart from the
arbiter's day (which turns only when the day's work is done and ``schedule.offset_seconds``
has passed): the summary goes out ``ALPHAVOL_SUMMARY_DELAY`` seconds (default 60) after
midnight UTC, whatever the users are doing. Figures come from the books
(``supervisor.ledger``: journals and volume readings) and, when it answers within
``ASK_TIMEOUT`` seconds, the exchange's own ``user-score``. It never raises: a failure is
logged and the next day tried again.
"""

from __future__ import annotations

import asyncio
import os
from datetime import date, timedelta
from typing import TYPE_CHECKING

import structlog

from supervisor import ledger
from supervisor.notify import Message, hostname
from supervisor.render import money, target, volume

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter

log = structlog.get_logger(__name__)

POLL_SECONDS = 1.0
ASK_TIMEOUT = 30.0


def summary_delay() -> float:
    try:
        return max(0.0, float(os.environ.get("ALPHAVOL_SUMMARY_DELAY", "60")))
    except ValueError:
        return 60.0


async def serve_daily_summary(arb: Arbiter) -> None:
    day = arb.clock.utc_day()
    while True:
        await asyncio.sleep(POLL_SECONDS)
        today = arb.clock.utc_day()
        if today <= day:
            continue
        ended, day = today - timedelta(days=1), today
        if not arb.observer.outbox.wants("daily_summary"):
            continue
        await asyncio.sleep(summary_delay())
        try:
            msg = await daily_summary(arb, ended)
            arb.observer.outbox.post(msg, key=ended.isoformat())
        except Exception:  # the summary is a courtesy: never take the supervisor down
            log.exception("daily_summary_failed", day=ended.isoformat())


async def daily_summary(arb: Arbiter, day: date) -> Message:
    """The message for the UTC ``day`` just ended."""
    await arb.observer.flush()
    users = list(dict.fromkeys([*arb.config.user_ids(), *arb.records]))
    try:
        async with asyncio.timeout(ASK_TIMEOUT):
            view = await ledger.ask_exchange(
                users, arb.credentials_for, arb.config.exchange, volumes=False
            )
    except Exception as exc:  # TimeoutError, anything: our figures alone
        log.warning("daily_summary_exchange_unavailable", error=type(exc).__name__)
        view = ledger.ExchangeView()
    data_dir = arb.config.paths.data_dir
    rows = await asyncio.to_thread(
        ledger.build, data_dir, today=day, days=1, users=users, exchange=view
    )
    lines = [f"alphavol on {hostname()}, UTC day {day.isoformat()}:"]
    for uid in users:
        lines.append(_user_line(arb, uid, [r for r in rows if r.user_id == uid], view, day))
    return Message(
        "daily_summary", f"alphavol: daily summary for {day.isoformat()}", "\n".join(lines)
    )


def _user_line(
    arb: Arbiter, uid: str, rows: list[ledger.LedgerRow], view: ledger.ExchangeView, day: date
) -> str:
    score = view.scores.get(uid, {}).get(day.isoformat())
    exch = getattr(score, "alpha_volume_score", None)
    exch_text = "" if exch is None else f" (exchange: {int(exch)})"
    by_token = {r.token: r for r in rows}
    parts = []
    for s in arb.config.for_user(uid):
        r = by_token.get(s.target_token)
        got = None if r is None else r.credited_volume
        unit = "" if s.volume_basis == "reported" else " (target in traded units)"
        parts.append(
            f"{s.strategy_id} {s.target_token} {volume(got)} / {target(s.target_volume)}{unit}"
        )
    totals = ledger.day_totals_of(rows)
    if not totals:
        return f"user {uid}: no round trips; " + ("; ".join(parts) or "no strategy")
    t = totals[0]
    cpp = t.cost_per_point
    return (
        f"user {uid}: {'; '.join(parts) or ', '.join(t.tokens)};"
        f" {'?' if t.points is None else t.points} points{exch_text};"
        f" {t.round_trips} round trips; cost {money(t.cost_usdt)} USDT"
        + ("" if cpp is None else f"; {money(cpp)} USDT per point")
    )
