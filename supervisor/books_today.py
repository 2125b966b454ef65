"""Today's figures from the books, for everything the supervisor shows.

``status`` (and ``status --watch``, the live view of ``run``), the exit summary and the
metrics show each user's round trips, cost, points and USDT per point of the day being
worked as ``alphavol history`` shows them: ``ledger.user_days`` over the users' journals
and ``books.sqlite``, never counted from the events of the current processes (which start
from zero after a restart of the supervisor, miss what a killed process did and leave dust
sweeps out).

The books are read from a worker thread (the event loop never waits for the disk): at
start, as soon as a user process reports a trade, a volume or its exit (at most once per
``SETTLE_SECONDS``), and every ``IDLE_SECONDS`` anyway. What was read is kept in memory,
which is all a status request reads. A user whose journal cannot be read yet keeps the
figures of its events.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from protocol import messages as m
from supervisor import ledger
from supervisor.records import row_status

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter
    from supervisor.records import Row
    from supervisor.user_record import UserRecord

log = structlog.get_logger(__name__)

SETTLE_SECONDS = 0.5  # a burst of events is one reading of the books
IDLE_SECONDS = 30.0
NOTHING = (0, Decimal(0))


class BooksToday:
    def __init__(self, arb: Arbiter) -> None:
        self.arb = arb
        self.day: str | None = None  # the day the figures are of
        self.users: dict[str, ledger.UserDay] = {}
        self._changed = asyncio.Event()

    def changed(self) -> None:
        """Something was traded, read or ended: read the books again soon."""
        self._changed.set()

    async def serve(self) -> None:
        while True:
            self._changed.clear()
            await self.last_reading()
            await asyncio.sleep(SETTLE_SECONDS)  # at most one reading per SETTLE_SECONDS
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IDLE_SECONDS):
                    await self._changed.wait()

    async def refresh(self) -> None:
        """Read the books now (the volume readings written first)."""
        arb = self.arb
        day, users = arb.day, list(arb.records)
        await arb.observer.flush()
        found = await asyncio.to_thread(
            ledger.user_days,
            arb.config.paths.data_dir,
            day=date.fromisoformat(day),
            users=users,
        )
        self.day, self.users = day, found

    async def last_reading(self) -> None:
        """``refresh`` that never raises: a failure (a full disk, a damaged file) is
        logged and the last reading stays (the exit summary reads the books this way too)."""
        try:
            await self.refresh()
        except Exception as exc:
            log.warning("books_unreadable", error=f"{type(exc).__name__}: {exc}")

    def of(self, user_id: str) -> ledger.UserDay | None:
        return self.users.get(user_id) if self.day == self.arb.day else None

    def status(self, rec: UserRecord, row: Row, *, now: float) -> m.UserStatus:
        """``records.row_status`` with the day's figures from the books."""
        u = row_status(rec, row, now=now)
        day = self.of(rec.user_id)
        if day is not None:
            u.trades, u.cost_today = day.by_strategy.get(u.strategy_id, NOTHING)
            total = day.total
            u.points_today, u.cost_per_point = total.points, total.cost_per_point
            u.user_round_trips, u.user_cost_today = total.round_trips, total.cost_usdt
        return u
