"""Nodes of a pool in tests: real ``alphavol run --node NAME`` supervisors (own paths),
one PostgreSQL (``tests.pgcluster``), the simulated exchange; and the invariant read from
the sim's own record."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from decimal import Decimal
from typing import Any

import psycopg

from config.credentials import new_key
from config.pgstore import StoreCredentials
from config.store_section import StoreSettings
from supervisor.client import SupervisorNotRunning
from tests.pgcluster import PASSWORD
from tests.supervisor.harness import Deployment, strategy
from tests.supervisor.test_real_users import FAST  # the user processes' fast tuning

LEASE = 5.0
ALIVE = {"STARTING", "RUNNING", "STOPPING"}
TERMINAL_STATUSES = {"FILLED", "CANCELED", "EXPIRED", "REJECTED"}


def acct(u: str) -> str:
    return f"acct{u}"


class Pool:
    def __init__(
        self,
        sim: Any,
        url: str,
        users: list[str],
        target: int,
        stored: list[str] | None = None,
        *,
        lease: float | None = LEASE,
        tuning: str | None = FAST,
        **strategy_kw: Any,
    ) -> None:
        """``users`` in the config; ``stored``: those with a session in the store (all).
        ``lease`` None: the config leaves lease_seconds at its default; ``tuning`` None:
        the user processes' production knobs; ``strategy_kw``: more strategy settings."""
        self.sim, self.url, self.users, self.target = sim, url, users, target
        self.lease, self.tuning, self.strategy_kw = lease, tuning, strategy_kw
        self.key = new_key()
        self.nodes: dict[str, Deployment] = {}
        self.stored: list[str] = []
        self.store_sessions(users if stored is None else stored)

    def store_sessions(self, users: list[str]) -> None:
        """A session for each of ``users`` in the store: nodes claim them at their next tick."""
        store = StoreCredentials(StoreSettings(url=self.url), key=self.key)
        for u in users:
            store.put(u, self.sim.credentials(acct(u)))
            self.stored.append(u)

    def start(
        self, name: str, url: str | None = None, sections: dict[str, Any] | None = None
    ) -> Deployment:
        """Node ``name``; ``sections``: more config sections (e.g. ``metrics``)."""
        d = Deployment(base_url=self.sim.base_url, ws_url=self.sim.ws_url)
        d.key = self.key
        store: dict[str, Any] = {"url": url or self.url}
        if self.lease is not None:
            store["lease_seconds"] = self.lease
        d.write_config(
            [strategy("koge", self.users, target=self.target, amount=10, **self.strategy_kw)],
            sections={**(sections or {}), "store": store},
            max_concurrent_users=len(self.users),
        )
        tuning = {"ALPHAVOL_TUNING": self.tuning} if self.tuning else {}
        d.start(
            once=False,
            child=None,
            args=("--node", name),
            ALPHAVOL_STORE_PASSWORD=PASSWORD,
            **tuning,
        )
        self.nodes[name] = d
        return d

    def kill_tree(self, name: str) -> None:
        """kill -9 of the node's whole process tree (supervisor, fork server, users)."""
        d = self.nodes[name]
        assert d.proc is not None
        os.killpg(d.proc.pid, signal.SIGKILL)
        d.proc.wait(10)

    async def running(self, names: list[str] | None = None) -> dict[str, list[str]]:
        """user -> the nodes on which a process of it is alive now."""
        out: dict[str, list[str]] = {u: [] for u in self.users}
        for name in names or list(self.nodes):
            d = self.nodes[name]
            try:
                users = await d.users()
            except SupervisorNotRunning:  # still starting
                assert d.proc is not None and d.proc.poll() is None, d.diagnose()
                continue
            for (_sid, uid), st in users.items():  # the pool view: its own rows only
                if st.state in ALIVE and st.pid and st.node == name:
                    out[uid].append(name)
        return out

    async def pids(self, name: str) -> list[int]:
        """The user processes of node ``name`` (its status shows the whole pool's)."""
        users = await self.nodes[name].users()
        return [st.pid for st in users.values() if st.pid and st.node == name]

    async def until(self, check, within: float, what: str) -> Any:
        deadline = time.monotonic() + within
        last = None
        while time.monotonic() < deadline:
            last = await check()
            if last:
                return last
            await asyncio.sleep(0.1)
        tails = "\n".join(f"=== {n}\n{d.stderr[-1500:]}" for n, d in self.nodes.items())
        raise AssertionError(
            f"gave up waiting for {what}; last={last!r}\n{self.pool_log()}\n{tails}"
        )

    async def spread(self, names: list[str], per_node: int, within: float) -> dict:
        """Until every user runs on exactly one of ``names``, ``per_node`` on each."""

        async def once() -> dict | None:
            on = {u: ns for u, ns in (await self.running(names)).items() if u in self.stored}
            counts = {n: sum(1 for ns in on.values() if ns == [n]) for n in names}
            ok = all(len(ns) == 1 for ns in on.values()) and all(
                c == per_node for c in counts.values()
            )
            return on if ok else None

        async def check():  # the same twice, half a second apart: not a handover's instant
            first = await once()
            if first is None:
                return None
            await asyncio.sleep(0.5)
            return first if await once() == first else None

        return await self.until(check, within, f"{per_node} users running on each of {names}")

    def leases(self) -> dict[str, tuple]:
        """user -> (node, epoch, finished_day, finished_why), straight from the store."""
        params = StoreSettings(url=self.url).connect_params()
        with psycopg.connect(**params) as conn:
            rows = conn.execute(
                "SELECT user_id, node, epoch, finished_day, finished_why FROM leases"
            ).fetchall()
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    def books(self, user: str) -> dict[str, str]:
        """The shared books' round trips of ``user``: its buy's order id -> the node that
        copied it, straight from the store."""
        params = StoreSettings(url=self.url).connect_params()
        with psycopg.connect(**params) as conn:
            rows = conn.execute(
                "SELECT order_id, node FROM books WHERE user_id = %s"
                " AND row->>'kind' = 'oto' AND row->>'placed' = '1'",
                (user,),
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    async def all_done(self, within: float) -> None:
        async def check():
            rows = await asyncio.to_thread(self.leases)
            return all(rows.get(u, (None, 0, None))[2] for u in self.users)

        await self.until(check, within, "every user finished its day")

    async def check_accounts(self) -> None:
        for u in self.users:
            a = await self.sim.admin.account(acct(u))
            assert Decimal(a["volume_now"]["KOGE"]) >= self.target, (
                u,
                a["volume_now"],
                self.leases(),
                self.pool_log(),
            )
            assert a["open_orders"] == 0, u
            koge = a["balances"].get("ALPHA_22", {"free": "0", "locked": "0"})
            held = (Decimal(koge["free"]) + Decimal(koge["locked"])) * 48
            # dust at most: each process sweeps the dust its own journal knows of, so a
            # user handed over keeps what earlier hosts left (~0.004 USDT a round trip)
            assert held < Decimal("1"), (u, held, self.pool_log(u))
            overlaps = overlapping_round_trips(a)
            assert not overlaps, (u, overlaps[:3], self.pool_log())

    def pool_log(self, user: str | None = None) -> str:
        """What each node said about leases and users (for a failure's message)."""
        names = {"user_claimed", "user_dropped", "user_handed_over", "pool_fenced",
                 "store_unreachable", "store_reachable", "user_killed_lease_expiring",
                 "user_state_changed"}  # fmt: skip
        lines = []
        for name, d in self.nodes.items():
            for line in d.stderr.splitlines():
                if any(f'"event": "{n}"' in line for n in names) or (
                    user and f'"user_id": "{user}"' in line and "oto_placing" not in line
                ):
                    lines.append(f"{name}: {line[:300]}")
        return "\n".join(lines)

    def cleanup(self) -> None:
        for d in self.nodes.values():
            d.cleanup()


def round_trips(account: dict) -> list[tuple[int, float]]:
    """(opened, closed) in sim milliseconds of every OTO round trip of an account: from its
    buy's creation to the last of its legs ending (inf: a leg still open)."""
    legs: dict[str, list[dict]] = {}
    for o in account["orders"]:
        if o["position"] in ("OTO_WORKING", "OTO_PENDING"):
            legs.setdefault(o["order_list_id"], []).append(o)
    out = []
    for orders in legs.values():
        opened = min(o["created_ms"] for o in orders)
        ends = [
            o["history"][-1]["time_ms"]
            if o["history"] and o["status"] in TERMINAL_STATUSES
            else float("inf")
            for o in orders
        ]
        out.append((opened, max(ends)))
    return sorted(out)


def overlapping_round_trips(account: dict) -> list[tuple]:
    """Pairs of round trips of one account that were open at the same moment."""
    trips = round_trips(account)
    return [(a, b) for a, b in itertools.pairwise(trips) if b[0] < a[1]]


def buys(account: dict) -> dict[str, int]:
    """Every OTO's buy of an account: its order id -> when it was placed (sim ms)."""
    return {
        o["order_id"]: o["created_ms"] for o in account["orders"] if o["position"] == "OTO_WORKING"
    }


def first_order_after(account: dict, ms: float) -> float | None:
    created = [
        o["created_ms"]
        for o in account["orders"]
        if o["position"] == "OTO_WORKING" and o["created_ms"] > ms
    ]
    return min(created) if created else None


async def sim_ms(sim: Any) -> float:
    return float((await sim.admin.advance_time(0))["time"]) * 1000
