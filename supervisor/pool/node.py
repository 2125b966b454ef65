"""This supervisor as one node of the pool (issue 22; DESIGN.md section 5).

``Pool.serve`` runs as one of the arbiter's services. Every ``lease/5`` seconds, in one
transaction (``supervisor.pool.store``): heartbeat with our users' status, renew the
leases we hold, count the pool, claim free or expired users up to our share. Between
ticks the arbiter asks ``may_start`` before it starts a user. When the database cannot
be reached the node keeps trying (backoff up to a lease), says so in ``status_text``
(status and sd_notify), claims nothing, and fences: at half a lease without a renewal
its users stop now (cancel, sell), and what still runs is killed before the lease can
have expired. A lease the database did not renew was taken by another node after it
expired: that user is stopped now and forgotten. A user that finished its day (DONE,
SKIPPED, STOPPED, FATAL) is released with that day, so no node starts it again today;
one handed over (balance) or dropped is released without it.

The first contact refuses a different plan: a node whose strategies differ from those of
a node heartbeating now stops with exit 2, naming the strategies.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import psycopg
import structlog

from config.credentials import CredentialsError
from config.logsetup import add_secrets
from protocol import messages as m
from supervisor.pool import balance, requests
from supervisor.pool.books import other_nodes_day
from supervisor.pool.leases import Leases
from supervisor.pool.store import PoolStore
from supervisor.pool.view import pool_view
from supervisor.reload_plan import settings_by_user
from supervisor.states import ALIVE, TERMINAL

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter

log = structlog.get_logger(__name__)
NODE_ENV = "ALPHAVOL_NODE"
BOOKS_EVERY = 5.0  # seconds between copies of the journals into the shared books


def node_name() -> str:
    return os.environ.get(NODE_ENV) or socket.gethostname()


def plan_of(config: Any) -> dict[str, str]:
    """strategy_id -> a fingerprint of everything that strategy trades (users included)."""
    by_strategy: dict[str, list[Any]] = {}
    for s in config.settings:
        if s.enabled:
            by_strategy.setdefault(s.strategy_id, []).append(msgspec.to_builtins(s))
    return {
        sid: hashlib.sha256(msgspec.json.encode(rows)).hexdigest()[:16]
        for sid, rows in by_strategy.items()
    }


def differing(mine: dict[str, str], theirs: dict[str, str]) -> list[str]:
    return sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))


class Pool:
    def __init__(self, arb: Arbiter) -> None:
        self.arb = arb
        self.settings = arb.config.store
        self.node = node_name()
        lease = self.settings.lease_seconds
        self.leases = Leases(lease=lease, renew_every=lease / 5)
        self.store = PoolStore(self.settings, self.node)
        self.plan = plan_of(arb.config)
        self.joined = False
        self.refused: str | None = None  # why this node may not join (exit 2)
        self.problem: str | None = "connecting to the store"  # None: reachable
        self.live_nodes = 0
        self.active_users = 0
        self.held_by: dict[str, int] = {}
        self._first_tick = True
        self.books = PoolStore(self.settings, self.node)  # its own link: never in the way
        self._copied: set[str] = set()  # order ids this node copied into the books
        self.books_read = False  # the other nodes' books read (or tried) once: may start users
        self.seen: list[tuple[str, float, bool, list[Any]]] = []  # every node, last tick

    # ------------------------------------------------------------ asked by the arbiter
    def may_start(self, user_id: str) -> bool:
        """Held with time to spare, and the other nodes' part of its day read once (its
        cost cap counts it: ``BooksToday.elsewhere``)."""
        return self.books_read and self.leases.may_start(user_id, time.monotonic())

    def trade_until(self) -> float:
        """For every Ping: the user processes stop by themselves past this (a stalled
        supervisor sends no StopNow), before the lease can expire."""
        return self.leases.trade_until()

    def status_text(self) -> str:
        where = f"node={self.node} holds={len(self.leases.held)}"
        if self.problem:
            return f"{where} store unreachable ({self.problem}): trading nothing, retrying"
        return f"{where} pool_users={self.active_users} nodes={self.live_nodes}"

    def new_day(self) -> None:
        """Users finished yesterday leave this node; any node may claim them today."""
        fleet = self.arb.fleet
        for uid, rec in list(fleet.records.items()):
            if rec.state in TERMINAL and uid not in self.leases.held:
                del fleet.records[uid]

    # ------------------------------------------------------------ the loop
    async def serve_books(self) -> None:
        """Every few seconds: the journals' finished round trips into the shared books
        (``supervisor.pool.books``), then what the other nodes traded today, for the
        day's figures this node shows and its users' cost caps (``BooksToday.other_nodes``);
        on a connection of its own. The first pass runs at once, and no user starts before
        it is over (``may_start``), read or not."""
        data_dir = self.arb.config.paths.data_dir
        while True:
            try:
                await self._books_pass(data_dir)
            finally:  # even a pass that failed unexpectedly must not keep users from trading
                if not self.books_read:
                    self.books_read = True
                    self.arb.wake()  # the users claimed meanwhile start now
            await asyncio.sleep(BOOKS_EVERY)

    async def _books_pass(self, data_dir: str) -> None:
        today = self.arb.clock.utc_day()
        since = (today - timedelta(days=1)).isoformat()
        try:
            if self.books.conn is None:
                await self.books.open()
            await self.books.copy_books(data_dir, since, self._copied)
            rows = await self.books.other_books(today.isoformat())
            theirs = await asyncio.to_thread(other_nodes_day, rows, today.isoformat(), data_dir)
            self.arb.observer.today.other_nodes(theirs)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            from config.pgstore import describe_error

            self.books.close()
            log.info("books_not_copied", error=describe_error(self.settings, exc))

    async def serve_fence(self) -> None:
        """Fencing on its own clock: never behind a store call that hangs."""
        while True:
            self._fence(time.monotonic())
            await asyncio.sleep(0.1)

    async def serve(self) -> None:
        backoff = 0.5
        while True:
            started = time.monotonic()
            ok = await self._attempt()
            if self.refused:
                return
            every = self.leases.renew_every
            if ok:
                backoff = 0.5
                pause = every - (time.monotonic() - started)
            else:
                pause = min(backoff, every)
                backoff = min(backoff * 2, self.leases.lease)
            await asyncio.sleep(max(0.05, pause))

    async def _attempt(self) -> bool:
        try:  # every store call is bounded (PoolStore.deadline)
            if self.store.conn is None:
                await self.store.open()
            if not self.joined:
                await self._join()
                if self.refused:
                    return False
            await self._tick()
        except (psycopg.Error, OSError, TimeoutError, CredentialsError) as exc:  # retry
            from config.pgstore import describe_error

            self.store.close()
            text = describe_error(self.settings, exc)
            if self.problem != text:
                log.warning("store_unreachable", error=text, node=self.node)
                self.arb.notifier.status(f"store unreachable: {text}; trading nothing")
            self.problem = text
            return False
        if self.problem is not None:
            log.info("store_reachable", node=self.node, store=self.settings.url)
        self.problem = None
        return True

    async def _join(self) -> None:
        for other, theirs in (await self.store.live_plans()).items():
            differ = differing(self.plan, theirs)
            if differ:
                self.refused = (
                    f"node {self.node}: the strategies {', '.join(differ)} differ from those of"
                    f" node {other}, which is running: every node must run the same strategies"
                )
                log.error("pool_plan_differs", node=self.node, other=other, strategies=differ)
                self.arb.request_shutdown(now=True)
                return
        self.arb.sessions.proxies = dict(self.arb.config.proxies)
        if self.arb.sessions.store is None:
            from config.pgstore import StoreCredentials

            self.arb.sessions.store = await asyncio.to_thread(
                StoreCredentials.from_settings, self.settings
            )
        self.joined = True
        log.info("pool_joined", node=self.node, store=self.settings.url)

    async def _tick(self) -> None:
        arb, leases = self.arb, self.leases
        await self._release_finished()
        users = list(settings_by_user(arb.config))
        begun = time.monotonic()
        view = await self.store.tick(
            users=users,
            held=dict(leases.held),
            # the first tick only says we are here: nodes starting together then see each
            # other before any of them claims
            claiming=not self._first_tick and not arb.stopping,
            capacity=self.capacity,
            plan=self.plan,
            status=self._status(),
            day=arb.day,
        )
        self._first_tick = False
        leases.renewed_at = begun
        self.active_users, self.live_nodes = view.active_users, view.live_nodes
        self.held_by = view.held_by
        for uid in [u for u in leases.held if u not in view.renewed]:
            del leases.held[uid]
            self._drop(uid, "lease taken by another node")
        for uid, epoch in view.claimed.items():
            leases.held[uid] = epoch
            await self._adopt(uid)
        await self._commands()
        self._balance()
        self.seen = await self.store.nodes()

    @property
    def capacity(self) -> int:
        return max(1, self.arb.config.max_concurrent_users)

    # ------------------------------------------------------------ users in and out
    async def _adopt(self, uid: str) -> None:
        """A user just claimed: its session from the store, a record, its volume check."""
        arb = self.arb
        assert arb.sessions.store is not None
        creds = await asyncio.to_thread(arb.sessions.store.get, uid)
        add_secrets(creds.secret_values())
        arb.sessions.cached[uid] = creds
        old = arb.fleet.records.pop(uid, None)
        if old is not None and old.state in ALIVE:  # cannot be: we held no lease for it
            arb.fleet.records[uid] = old
            return
        arb.fleet.add(uid, settings_by_user(arb.config).get(uid, []))
        log.info("user_claimed", user_id=uid, node=self.node, epoch=self.leases.held[uid])
        arb.wake()  # the arbiter checks its volume, then starts it (``may_start``)

    def _drop(self, uid: str, reason: str) -> None:
        """Stop a user now and forget it (its lease is gone or going)."""
        fleet = self.arb.fleet
        rec = fleet.records.get(uid)
        if rec is None:
            return
        log.warning("user_dropped", user_id=uid, node=self.node, reason=reason)
        fleet.remove(rec, now=True, reason=reason)
        self.arb.wake()

    def _fence(self, mono: float) -> None:
        leases = self.leases
        if leases.must_stop(mono):
            log.error(
                "pool_fenced",
                node=self.node,
                seconds_without_renewal=round(leases.age(mono), 1),
                users=sorted(leases.held),
            )
            for uid in leases.fence():
                self._drop(uid, "store unreachable for half a lease")
        if leases.fenced and leases.must_kill(mono):
            for uid in leases.fenced:
                rec = self.arb.fleet.records.get(uid)
                if rec is not None and rec.child is not None:
                    log.error("user_killed_lease_expiring", user_id=uid, node=self.node)
                    rec.child.kill()

    async def _release_finished(self) -> None:
        """Release what we no longer run: finished today (with the day), handed over or
        dropped (without); fenced leases once their processes are gone."""
        fleet, leases, day = self.arb.fleet, self.leases, self.arb.day
        for uid, epoch in list(leases.held.items()):
            rec = fleet.records.get(uid)
            if rec is None:
                await self.store.release(uid, epoch, day=None, why=None)
            elif rec.state in TERMINAL:
                await self.store.release(uid, epoch, day=day, why=rec.state.value)
            else:
                continue
            del leases.held[uid]
        for uid, epoch in list(leases.fenced.items()):
            if uid not in fleet.records:
                await self.store.release(uid, epoch, day=None, why=None)
                del leases.fenced[uid]

    def _balance(self) -> None:
        """Hand users over (``supervisor.pool.balance``): drained at the end of their round
        trip, then released (``_release_finished``) for a node below its share to claim.
        One at a time: the counts do not show a drain under way."""
        fleet, leases = self.arb.fleet, self.leases
        if self.arb.stopping or self.problem:
            return
        if any((r := fleet.records.get(u)) and r.remove_after_exit for u in leases.held):
            return
        excess = balance.to_hand_over(self.node, self.held_by, self.active_users, self.capacity)
        for uid in reversed(list(leases.held)):
            if excess <= 0:
                break
            rec = fleet.records.get(uid)
            if rec is None or rec.state in TERMINAL:
                continue
            log.info("user_handed_over", user_id=uid, node=self.node)
            fleet.remove(rec, now=False, reason="handed over to another node")
            excess -= 1

    async def _commands(self) -> None:
        held = list(self.leases.held)
        if not held:
            return
        for cmd in await self.store.commands(held):
            log.info("pool_command", user_id=cmd.user_id, action=cmd.action, node=self.node)
            if cmd.action == "stop":
                self.arb.fleet.stop_users(cmd.strategy_id, cmd.user_id, now=cmd.now)
            elif cmd.action == "start":
                self.arb.fleet.start_users(cmd.strategy_id, cmd.user_id)

    def _status(self) -> list[Any]:
        """Our users' status rows, as our own ``status`` shows them (the day's figures from
        the books included), for every node's status and metrics."""
        mono, today = self.arb.mono(), self.arb.observer.today
        return [
            msgspec.to_builtins(today.status(rec, row, now=mono))
            for rec in self.arb.fleet.records.values()
            for row in rec.rows.values()
        ]

    # ------------------------------------------------------------ the pool view
    def status_reply(self, reply: m.StatusReply) -> m.StatusReply:
        """This node's reply with every user of the pool (the row of the node running it,
        else the latest known) and every node the store has seen (issue 22)."""
        return pool_view(self, reply)

    def stop_elsewhere(self, req: m.StopRequest) -> m.Reply:
        return requests.stop_elsewhere(self, req)

    def start_anywhere(self, req: m.StartRequest) -> m.Reply:
        return requests.start_anywhere(self, req)
