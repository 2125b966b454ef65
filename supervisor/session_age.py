"""A stored session gets old: announce it once, before the exchange logs it out.

The exchange's "stay signed in" lasts about 5 days. Every ``CHECK_SECONDS`` this rereads
when each session was stored (off the loop: a SQLite read) and posts one ``session_aging``
notification per stored session older than ``dashboard.session_warn_hours`` (default 96);
a session stored again (``users add``, the dashboard's refresh) starts the count anew.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

import structlog

from config.output import age_text
from supervisor.notify import Message, hostname
from supervisor.sessions import stored_times

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter

log = structlog.get_logger(__name__)

CHECK_SECONDS = float(os.environ.get("ALPHAVOL_SESSION_CHECK_SECONDS", "60"))


def aging_alert(user_id: str, age_seconds: float) -> Message:
    body = (
        f"The stored session of user {user_id} on {hostname()} is {age_text(age_seconds)} old;"
        " the exchange logs a session out after about 5 days.\n"
        "What to do: log in to binance.com in a browser, copy a request as cURL, and paste it"
        f" in the dashboard, or `alphavol users add {user_id} --curl FILE`."
    )
    return Message("session_aging", f"alphavol: user {user_id}: session getting old", body, user_id)


async def serve_session_ages(arb: Arbiter) -> None:
    warned: dict[str, float] = {}  # user -> stored_at of the session already announced
    while True:
        store = arb.sessions.store
        if store is not None:
            try:
                arb.sessions.stored_at.update(await asyncio.to_thread(stored_times, store))
            except Exception as exc:  # a locked or broken store: try again next time
                log.warning("session_dates_unreadable", error=type(exc).__name__)
        limit = arb.config.dashboard.session_warn_hours * 3600
        now = arb.clock.time()
        for uid, at in list(arb.sessions.stored_at.items()):
            if uid in arb.records and now - at > limit and warned.get(uid) != at:
                warned[uid] = at
                log.warning("session_aging", user_id=uid, age_hours=round((now - at) / 3600, 1))
                arb.observer.outbox.post(aging_alert(uid, now - at))
        await asyncio.sleep(CHECK_SECONDS)
