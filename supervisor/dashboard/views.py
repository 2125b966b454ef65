"""What the dashboard's API answers: the status (the fields of ``alphavol status --json``,
built by the same control command and renderer), who needs a person and why, and the
books (the rows of ``alphavol history --json``, and per user and day for the chart).

Everything leaves through ``config.logsetup.redact_value``: a secret that reached a
reason or an error text is masked here too.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from config.logsetup import redact_value
from config.output import age_text
from exchange.points import SCORE_WINDOW_DAYS
from protocol import messages as m
from supervisor import alerts, ledger, render
from supervisor.commands.status import status_reply
from supervisor.states import RowState

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter

NEEDS_STATES = {RowState.FATAL, RowState.STOPPED}
# how long the exchange's own points (user-score: one request per user) are reused; today's
# volume comes from the supervisor's own readings (the volume book), not asked again
EXCHANGE_TTL = 900.0
REFRESH_HINT = ' Or paste a fresh "Copy as cURL" in its Refresh session form here.'


def status_doc(arb: Arbiter) -> dict[str, Any]:
    """What ``status --json`` shows, and who needs a person (the caller first awaits
    ``observer.today.current()``, as the control command does)."""
    reply = status_reply(arb)
    doc = render.to_json(reply)
    doc["attention"] = attention(arb, reply)
    doc["generated_at"] = time.time()
    return redact_value(doc)


def attention(arb: Arbiter, reply: m.StatusReply) -> list[dict[str, Any]]:
    """Every user that needs a person: what happened and the next step (the texts of the
    notifications), and every session older than ``session_warn_hours``."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    warn = arb.config.dashboard.session_warn_hours * 3600
    now = time.time()
    for st in reply.strategies:
        for u in st.users:
            if u.user_id in seen:
                continue
            seen.add(u.user_id)
            event = arb.observer.needs.get(u.user_id)
            if u.state in NEEDS_STATES and event:
                todo = alerts.TODO.get(event, "see `alphavol status` and the log.")
                if event == "session_expired":
                    todo += REFRESH_HINT
                out.append(
                    {
                        "user_id": u.user_id,
                        "state": u.state,
                        "event": event,
                        "what": alerts.WHAT.get(event, event),
                        "reason": u.reason,
                        "todo": todo.format(u=u.user_id),
                    }
                )
            elif u.session_stored_at is not None and now - u.session_stored_at > warn:
                out.append(
                    {
                        "user_id": u.user_id,
                        "state": u.state,
                        "event": "session_aging",
                        "what": f"its session is {age_text(now - u.session_stored_at)} old;"
                        " the exchange logs a session out after about 5 days",
                        "reason": None,
                        "todo": "log in to binance.com in a browser, copy a request as cURL"
                        " and paste it in its Refresh session form here.",
                    }
                )
    return out


class Books:
    """The books for the API; the exchange's own points are asked at most every
    ``EXCHANGE_TTL`` seconds (one request per user), today's volume is the supervisor's
    last reading (``volume_from: recorded``), the files are read off the loop."""

    def __init__(self, arb: Arbiter) -> None:
        self.arb = arb
        self.view: ledger.ExchangeView | None = None
        self.asked_at = 0.0
        self.lock = asyncio.Lock()

    async def rows(self, days: int = SCORE_WINDOW_DAYS, user: str | None = None) -> list:
        arb = self.arb
        data_dir = arb.config.paths.data_dir
        users = await asyncio.to_thread(ledger.journal_users, data_dir)
        if user is not None:
            users = [u for u in users if u == user]
        view = await self._exchange(users)
        return await asyncio.to_thread(
            ledger.build,
            data_dir,
            today=arb.clock.utc_day(),
            days=days,
            users=users,
            exchange=view,
        )

    async def _exchange(self, users: list[str]) -> ledger.ExchangeView:
        async with self.lock:
            fresh = self.arb.mono() - self.asked_at < EXCHANGE_TTL
            if self.view is None or not fresh or not set(users) <= set(self.view.scores):
                self.view = await ledger.ask_exchange(
                    users, self.arb.credentials_for, self.arb.config.exchange, volumes=False
                )
                self.asked_at = self.arb.mono()
            return self.view

    async def history(self, days: int, user: str | None) -> list[dict[str, Any]]:
        return redact_value([r.as_json() for r in await self.rows(days, user)])

    async def chart(self) -> dict[str, Any]:
        """Per user, every day of the window (oldest first; a day without round trips has
        no figures): points, the exchange's points, cost, cost per point (the day's
        points are those of its tokens' summed volume)."""
        today = self.arb.clock.utc_day()
        window = [
            (today - timedelta(days=SCORE_WINDOW_DAYS - 1 - i)).isoformat()
            for i in range(SCORE_WINDOW_DAYS)
        ]
        found: dict[str, dict[str, ledger.DayTotal]] = {}
        for d in ledger.day_totals_of(await self.rows()):
            found.setdefault(d.user_id, {})[d.day] = d
        users = {
            uid: [_chart_day(day, days.get(day)) for day in window] for uid, days in found.items()
        }
        return redact_value({"days": window, "users": users})


def _chart_day(day: str, d: ledger.DayTotal | None) -> dict[str, Any]:
    if d is None:
        return {
            "day": day,
            "points": None,
            "exchange_points": None,
            "cost_usdt": None,
            "cost_per_point": None,
        }
    cpp = d.cost_per_point
    return {
        "day": day,
        "points": d.points,
        "exchange_points": d.exchange_points,
        "cost_usdt": format(d.cost_usdt, "f"),
        "cost_per_point": None if cpp is None else format(cpp, "f"),
    }
