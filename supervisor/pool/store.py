"""One node's SQL against the pool's tables (schema: ``config.pgstore``).

Every call is one transaction, bounded by ``deadline`` seconds. A call past its deadline
is not cancelled (psycopg answers a cancellation by asking the server to cancel the
query, over the same dead link, for up to 10 s): its connection is closed under it and the
call abandoned, so a stalled link never holds the node's loop. Lease times are the database's (``now()``), never a
host's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from config.pgstore import migration_sql
from config.store_section import StoreSettings
from supervisor.pool import balance

T = TypeVar("T")


def _forget(task: asyncio.Task) -> None:
    """An abandoned call's outcome: a connection it opened after all is closed."""
    if task.cancelled() or task.exception() is not None:
        return
    conn = task.result()
    if isinstance(conn, psycopg.AsyncConnection):
        conn.pgconn.finish()


@dataclass(frozen=True)
class PoolView:
    """What the last tick saw of the pool."""

    active_users: int  # users with sessions, not finished today
    live_nodes: int  # nodes (this one included) that heartbeat within a lease
    renewed: frozenset[str]  # our leases the database renewed
    claimed: dict[str, int]  # user_id -> epoch of the leases just claimed
    held_by: dict[str, int]  # every live node (this one included) -> leases it holds


@dataclass(frozen=True)
class Command:
    id: int
    user_id: str
    action: str  # "stop" | "start"
    strategy_id: str | None
    now: bool


class PoolStore:
    def __init__(self, settings: StoreSettings, node: str) -> None:
        self.settings = settings
        self.node = node
        self.lease = settings.lease_seconds
        self.conn: psycopg.AsyncConnection | None = None
        self.deadline = self.lease / 5  # the books copy sets its own

    async def _bounded(self, make: Callable[[], Awaitable[T]]) -> T:
        task = asyncio.ensure_future(make())
        done, _ = await asyncio.wait({task}, timeout=self.deadline)
        if not done:
            self.close()
            task.add_done_callback(_forget)
            raise TimeoutError(f"no answer within {self.deadline:g} s")
        return task.result()

    async def open(self) -> None:
        async def connect() -> psycopg.AsyncConnection:
            conn = await psycopg.AsyncConnection.connect(
                **self.settings.connect_params(), autocommit=True, connect_timeout=10
            )
            # A node cut off mid-transaction (its link dead, its peer never closing) must
            # not hold its row locks until TCP gives up, hours later: the server ends a
            # session of ours idle in a transaction past the deadline, and none of our
            # statements waits on a lock longer than that (we gave up on it by then).
            ms = max(100, round(self.deadline * 1000))
            await conn.execute(f"SET idle_in_transaction_session_timeout = {ms}".encode())
            await conn.execute(f"SET lock_timeout = {ms}".encode())
            async with conn.transaction():
                await conn.execute(migration_sql().encode())  # type: ignore[call-overload]
            return conn

        self.conn = await self._bounded(connect)

    def close(self) -> None:
        """Drop the connection at once (no goodbye on a link that may be dead)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.pgconn.finish()

    def _c(self) -> psycopg.AsyncConnection:
        assert self.conn is not None, "open() first"
        return self.conn

    async def live_plans(self) -> dict[str, dict[str, str]]:
        """node -> its strategies' fingerprints, for the other nodes heartbeating now."""
        return await self._bounded(self._live_plans)

    async def _live_plans(self) -> dict[str, dict[str, str]]:
        cur = await self._c().execute(
            "SELECT node, strategies FROM nodes WHERE node <> %s"
            " AND heartbeat_at > now() - make_interval(secs => %s)",
            (self.node, self.lease),
        )
        return {row[0]: row[1] for row in await cur.fetchall()}

    async def tick(self, **kw: Any) -> PoolView:
        return await self._bounded(lambda: self._tick(**kw))

    async def _tick(
        self,
        *,
        users: list[str],
        held: dict[str, int],
        claiming: bool,
        capacity: int,
        plan: dict[str, str],
        status: dict[str, Any],
        day: str,
    ) -> PoolView:
        """Heartbeat, renew what we hold, count the pool and (``claiming``) claim free or
        expired users up to our share of it (``supervisor.pool.balance``): one transaction,
        so the share is computed from the counts of this instant."""
        conn = self._c()
        lease = self.lease
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO nodes (node, heartbeat_at, started_at, capacity, strategies, status)"
                " VALUES (%s, now(), now(), %s, %s, %s) ON CONFLICT (node) DO UPDATE SET"
                " heartbeat_at = now(), capacity = excluded.capacity,"
                " strategies = excluded.strategies, status = excluded.status",
                (self.node, capacity, json.dumps(plan), json.dumps(status)),
            )
            # only the users with no row yet: a conflict with a row another node's open
            # transaction is updating would wait for that transaction (here, forever, if
            # that node was cut off mid-transaction)
            await conn.execute(
                "INSERT INTO leases (user_id) SELECT u FROM unnest(%s::text[]) AS u"
                " WHERE NOT EXISTS (SELECT 1 FROM leases WHERE user_id = u)"
                " ON CONFLICT DO NOTHING",
                (users,),
            )
            cur = await conn.execute(
                "UPDATE leases SET expires_at = now() + make_interval(secs => %s)"
                " WHERE node = %s AND (user_id, epoch) IN"
                " (SELECT * FROM unnest(%s::text[], %s::bigint[])) RETURNING user_id",
                (lease, self.node, list(held), list(held.values())),
            )
            renewed = frozenset(r[0] for r in await cur.fetchall())
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM leases l WHERE l.user_id = ANY(%s)"
                " AND l.finished_day IS DISTINCT FROM %s"
                " AND EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = l.user_id)),"
                " (SELECT count(*) FROM nodes"
                "  WHERE heartbeat_at > now() - make_interval(secs => %s))",
                (users, day, lease),
            )
            active, live = await cur.fetchone()  # type: ignore[misc]
            cur = await conn.execute(
                "SELECT n.node, count(l.user_id) FROM nodes n LEFT JOIN leases l"
                " ON l.node = n.node AND l.expires_at > now()"
                " WHERE n.heartbeat_at > now() - make_interval(secs => %s) GROUP BY n.node",
                (lease,),
            )
            held_by = {r[0]: int(r[1]) for r in await cur.fetchall()}
            claimed: dict[str, int] = {}
            held_by[self.node] = len(renewed)
            claim = balance.to_claim(self.node, held_by, int(active), capacity)
            if claiming and claim > 0:
                cur = await conn.execute(
                    "UPDATE leases l SET node = %s, epoch = l.epoch + 1,"
                    " expires_at = now() + make_interval(secs => %s)"
                    " WHERE l.user_id IN (SELECT user_id FROM leases f"
                    "  WHERE f.user_id = ANY(%s) AND f.finished_day IS DISTINCT FROM %s"
                    "  AND (f.node IS NULL OR f.expires_at < now())"
                    "  AND EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = f.user_id)"
                    "  ORDER BY f.user_id LIMIT %s FOR UPDATE SKIP LOCKED)"
                    " RETURNING l.user_id, l.epoch",
                    (self.node, lease, users, day, claim),
                )
                claimed = {r[0]: int(r[1]) for r in await cur.fetchall()}
        held_by[self.node] = len(renewed) + len(claimed)
        return PoolView(int(active), int(live), renewed, claimed, held_by)

    async def release(self, user_id: str, epoch: int, *, day: str | None, why: str | None) -> None:
        """Give a lease up (only if still ours at that epoch); ``day``: done for that day."""
        await self._bounded(
            lambda: self._c().execute(
                "UPDATE leases SET node = NULL, expires_at = '-infinity',"
                " finished_day = COALESCE(%s, finished_day), finished_why = %s"
                " WHERE user_id = %s AND node = %s AND epoch = %s",
                (day, why, user_id, self.node, epoch),
            )
        )

    async def nodes(self) -> list[tuple[str, float, bool, list[Any]]]:
        """Every node: (name, seconds since its heartbeat, alive, its users' status rows)."""
        return await self._bounded(self._nodes)

    async def _nodes(self) -> list[tuple[str, float, bool, list[Any]]]:
        cur = await self._c().execute(
            "SELECT node, extract(epoch FROM now() - heartbeat_at)::float8,"
            " heartbeat_at > now() - make_interval(secs => %s), status FROM nodes ORDER BY node",
            (self.lease,),
        )
        return [(r[0], float(r[1]), bool(r[2]), r[3] or []) for r in await cur.fetchall()]

    async def stop_user(
        self, user_id: str, strategy_id: str | None, now: bool, day: str
    ) -> str | None:
        """Stop a user from any node: a command to the node holding its lease (returned),
        or, when none holds it, marked stopped for the day so that none claims it."""
        return await self._bounded(lambda: self._stop_user(user_id, strategy_id, now, day))

    async def _stop_user(
        self, user_id: str, strategy_id: str | None, now: bool, day: str
    ) -> str | None:
        conn = self._c()
        async with conn.transaction():
            cur = await conn.execute(
                "SELECT node FROM leases WHERE user_id = %s AND node IS NOT NULL"
                " AND expires_at > now() FOR UPDATE",
                (user_id,),
            )
            row = await cur.fetchone()
            if row is not None:
                await conn.execute(
                    "INSERT INTO commands (user_id, action, strategy_id, now_flag)"
                    " VALUES (%s, 'stop', %s, %s)",
                    (user_id, strategy_id, now),
                )
                return str(row[0])
            if strategy_id is None:
                await conn.execute(
                    "UPDATE leases SET finished_day = %s, finished_why = 'STOPPED'"
                    " WHERE user_id = %s",
                    (day, user_id),
                )
            return None

    async def start_user(self, user_id: str) -> None:
        """Any node may claim the user again today (it is checked first)."""
        await self._bounded(
            lambda: self._c().execute(
                "UPDATE leases SET finished_day = NULL, finished_why = NULL WHERE user_id = %s",
                (user_id,),
            )
        )

    async def copy_books(self, data_dir: str, since: str, copied: set[str]) -> int:
        """This node's journals' finished round trips into the shared books."""
        from supervisor.pool.books import copy_journals

        return await self._bounded(
            lambda: copy_journals(self._c(), self.node, data_dir, since, copied)
        )

    async def other_books(self, day: str) -> list[tuple[Any, ...]]:
        """The shared books' rows of ``day`` that the other nodes copied."""
        from supervisor.pool.books import other_nodes_rows

        return await self._bounded(lambda: other_nodes_rows(self._c(), self.node, day))

    async def commands(self, users: list[str]) -> list[Command]:
        """Commands addressed to the users we hold, marked done as they are taken."""
        return await self._bounded(lambda: self._commands(users))

    async def _commands(self, users: list[str]) -> list[Command]:
        cur = await self._c().execute(
            "UPDATE commands SET done_by = %s, done_at = now()"
            " WHERE done_at IS NULL AND user_id = ANY(%s)"
            " RETURNING id, user_id, action, strategy_id, now_flag",
            (self.node, users),
        )
        rows = sorted(await cur.fetchall())
        return [Command(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]
