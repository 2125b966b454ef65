"""Today's figures from the books, for everything the supervisor shows.

``status`` (and ``status --watch``, the live view of ``run``), the exit summary and the
metrics show each user's round trips, cost, points and USDT per point of the day being
worked as ``alphavol history`` shows them: ``ledger.user_days`` over the users' journals
and ``books.sqlite``, never counted from the events of the current processes (which start
from zero after a restart of the supervisor, miss what a killed process did and leave dust
sweeps out).

The books are read from a worker thread (the event loop never waits for the disk): every
user's at start, on a new day and after ``IDLE_SECONDS`` without news; a user's as soon as
its process reports a trade, a volume or its exit, or the supervisor reads its volume (at
most one reading per ``SETTLE_SECONDS``). What was read is kept in memory. A status
request (``status``, a scrape, the dashboard) first waits, for at most ``FRESH_SECONDS``,
for the reading that covers every change noted before it arrived: a user shown DONE is
shown with the figures of its last trade, and two requests with nothing new in between
show the same figures. A user whose journal cannot be read yet keeps the figures of its
events. On a node of a pool, a user's day also counts what other nodes traded of it (a
user handed over: the shared books, less what this node's journal holds too), so every
node shows the whole day, as ``history`` does.
"""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from protocol import messages as m
from supervisor import ledger
from supervisor.records import row_status

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter
    from supervisor.pool.books import OtherNodesDay
    from supervisor.records import Row
    from supervisor.user_record import UserRecord
    from userproc.journal import DayTotals
    from userproc.spec import CopiedElsewhere

log = structlog.get_logger(__name__)

SETTLE_SECONDS = 0.5  # a burst of events is one reading of the books
IDLE_SECONDS = 30.0
FRESH_SECONDS = 2.0  # how long a status request waits for the pending reading
NOTHING = (0, Decimal(0))


class BooksToday:
    def __init__(self, arb: Arbiter) -> None:
        self.arb = arb
        self.day: str | None = None  # the day the figures are of
        self.users: dict[str, ledger.UserDay] = {}
        self._changed = asyncio.Event()
        self._stale: set[str] = set()  # users whose books changed since the last reading
        self._noted = 0  # changes noted so far
        self._covered = 0  # of those, how many the last reading covers
        self._hurry = asyncio.Event()  # a request waits: read now, without settling
        self._read = asyncio.Condition()
        # on a node of a pool: the other nodes' part of a day, as last read (``other_nodes``)
        self._others: OtherNodesDay | None = None

    def changed(self, user_id: str) -> None:
        """This user traded, read a volume or ended: read its books again soon."""
        self._stale.add(user_id)
        self._noted += 1
        self._changed.set()

    def other_nodes(self, theirs: OtherNodesDay) -> None:
        """A node of a pool read what the other nodes traded of each user on a day (the
        shared books, every few seconds): the users whose part changed are read again."""
        before = self._others_of(theirs.day) or {}
        self._others = theirs
        for uid in before.keys() | theirs.totals.keys():
            if before.get(uid) != theirs.totals.get(uid):
                self.changed(uid)

    def _others_of(self, day: str) -> dict[str, list[DayTotals]] | None:
        """The other nodes' totals of ``day`` per user, if the last read was of that day."""
        o = self._others
        return o.totals if o is not None and o.day == day else None

    def elsewhere(self, user_id: str) -> m.SpentElsewhere | None:
        """On a node of a pool: what the user's day cost on the other nodes, as last read
        (``other_nodes``); None on a single host. Sent to the user process with every
        Ping, so that its ``max_daily_cost_usdt`` caps the whole day."""
        o = self._others
        if o is None:
            return None
        return m.SpentElsewhere(day=o.day, cost_usdt=o.spent.get(user_id, Decimal(0)))

    def copied_elsewhere(self, user_id: str) -> CopiedElsewhere | None:
        """On a node of a pool whose books were read: the order ids of the user's round
        trips that other nodes copied on the day read, for a user process about to start
        (it records the ones of today no node copied); None on a single host."""
        from userproc.spec import CopiedElsewhere

        o = self._others
        if o is None:
            return None
        return CopiedElsewhere(day=o.day, order_ids=o.orders.get(user_id, frozenset()))

    async def current(self, within: float = FRESH_SECONDS) -> None:
        """Return once the figures cover every change noted before this call and are of
        the day being worked, or after ``within`` seconds (the last reading then stands)."""
        wanted = self._noted

        def covered() -> bool:
            return self._covered >= wanted and self.day == self.arb.day

        if covered():
            return
        self._hurry.set()
        self._changed.set()
        try:
            async with asyncio.timeout(within), self._read:
                await self._read.wait_for(covered)
        except TimeoutError:
            log.warning("books_reading_late", waited_seconds=within)

    async def serve(self) -> None:
        every = True  # at start, and when nothing happened for IDLE_SECONDS
        while True:
            self._changed.clear()
            self._hurry.clear()
            await self.last_reading(every=every)
            try:  # at most one reading per SETTLE_SECONDS, unless a request waits
                async with asyncio.timeout(SETTLE_SECONDS):
                    await self._hurry.wait()
            except TimeoutError:
                pass
            try:
                async with asyncio.timeout(IDLE_SECONDS):
                    await self._changed.wait()
                every = False
            except TimeoutError:
                every = True

    async def refresh(self, *, every: bool = True) -> None:
        """Read the books now (the volume readings written first): every user's, or
        (``every=False``) those that changed since the last reading; every user's when
        the day being worked changed."""
        arb = self.arb
        day = arb.day
        every = every or day != self.day
        users = list(arb.records) if every else [u for u in self._stale if u in arb.records]
        self._stale.difference_update(users)
        await arb.observer.flush()
        found = await asyncio.to_thread(
            ledger.user_days,
            arb.config.paths.data_dir,
            day=date.fromisoformat(day),
            users=users,
            others=self._others_of(day),
        )
        kept = {} if every else {u: v for u, v in self.users.items() if u not in users}
        self.day, self.users = day, {**kept, **found}

    async def last_reading(self, *, every: bool = True) -> None:
        """``refresh`` that never raises: a failure (a full disk, a damaged file) is
        logged and the last reading stays (the exit summary reads the books this way too).
        Either way the changes noted before it are settled for ``current``."""
        noted = self._noted
        try:
            await self.refresh(every=every)
        except Exception as exc:
            log.warning("books_unreadable", error=f"{type(exc).__name__}: {exc}")
        self._covered = max(self._covered, noted)
        async with self._read:
            self._read.notify_all()

    def of(self, user_id: str) -> ledger.UserDay | None:
        if self.day != self.arb.day:  # a new day: read every user's books at once
            self._changed.set()
            return None
        return self.users.get(user_id)

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
