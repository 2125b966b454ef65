"""Failover of a pool (issue 22; DESIGN.md section 5): what a host killed outright costs
its users, with the lease an operator gets (the default, 20 s).

A throw-away PostgreSQL (``tests.pgcluster``), the simulated exchange as a process, three
real ``alphavol run --node NAME`` supervisors with their own paths (``tests.pool.harness``)
sharing ``users`` users, production tuning of the user processes, one round trip a second
each. The sessions go into the store once all three nodes heartbeat, so each claims its
share at its next tick. Once every user trades, node c's whole process tree is killed
(``kill -9``). Per user it ran: the time from the kill to that user's next order accepted
by the sim, from the sim's own order record (an order stamped after every process of c
was gone is a new owner's). Then: every one of them has a new owner, each user runs on
exactly one node, and after the survivors stop, from the sim's record: no account had two
round trips open at once. The bar: at most a minute.

Loopback only; every wait has a deadline; the nodes' process groups, the sim and the
cluster are stopped whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from typing import Any

import aiohttp

from bench.common import Deadline, SimProcess, percentile
from config.store_section import DEFAULT_LEASE_SECONDS, PASSWORD_ENV
from exchange.sim.testing import SimAdmin, SimHarness
from supervisor.client import SupervisorNotRunning
from tests.pgcluster import PASSWORD, PgCluster, pg_bin
from tests.pool.harness import (
    Pool,
    acct,
    first_order_after,
    overlapping_round_trips,
    round_trips,
    sim_ms,
)
from tests.supervisor.harness import pids_alive, wait_gone

NODES = ("a", "b", "c")
VICTIM = "c"
BAR_SECONDS = 60.0
TAKEOVER_BOUND = 150.0  # seconds we wait for the killed node's users (the bar is 60)
TARGET = 10_000_000  # never reached: every user trades until the survivors stop


class SimLink:
    """The sim process as ``tests.pool.harness.Pool`` uses a ``SimHarness``: its URLs,
    its admin API, a valid session per account."""

    def __init__(self, sim: SimProcess, http: aiohttp.ClientSession) -> None:
        self.base_url, self.ws_url = sim.base_url, sim.ws_url
        self.admin = SimAdmin(sim.base_url, http)
        self.credentials = SimHarness().credentials


async def run_failover(users: int, log=print) -> dict[str, Any]:
    """3 nodes, ``users`` users (a multiple of 3), node c killed; the figures as a dict."""
    res: dict[str, Any] = {
        "nodes": len(NODES),
        "users": users,
        "killed": VICTIM,
        "lease_seconds": DEFAULT_LEASE_SECONDS,  # the nodes' config leaves it out
        "trade_interval_seconds": 1,
    }
    bindir = pg_bin()
    if bindir is None:
        return {**res, "error": "no PostgreSQL here (apt-get install -y postgresql)"}
    t0 = time.monotonic()
    old_password = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = PASSWORD  # for the bench's own look-ups in the store
    cluster = PgCluster(bindir)
    sim = SimProcess(seed=1, fill_delay=0.05, volume_lag=0, volatility=0, spread=0)
    pool: Pool | None = None
    seen: list[int] = []  # user processes of every node: none may outlive the run
    try:
        await asyncio.to_thread(cluster.start)
        url = await asyncio.to_thread(cluster.database)
        await sim.start()
        async with aiohttp.ClientSession() as http:
            link = SimLink(sim, http)
            ids = [str(u) for u in range(1, users + 1)]
            pool = Pool(link, url, ids, TARGET, stored=[], lease=None, tuning=None,
                        trade_interval_seconds=res["trade_interval_seconds"])  # fmt: skip
            await measure(pool, link, ids, res, seen, log)
    except Exception as exc:  # recorded with what was measured so far
        log(f"  failover failed: {type(exc).__name__}: {exc}"[:3000])
        res["error"] = f"{type(exc).__name__}: {exc}"[:600]
    finally:
        if pool is not None:
            res["stray_processes"] = await asyncio.to_thread(stop_nodes, pool, seen)
        await sim.stop()
        with contextlib.suppress(RuntimeError):  # not started: its directory is removed
            await asyncio.to_thread(cluster.stop)
        if old_password is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = old_password
    res["seconds"] = round(time.monotonic() - t0, 1)
    return res


async def measure(
    pool: Pool, link: SimLink, ids: list[str], res: dict[str, Any], seen: list[int], log
) -> None:
    """Fills ``res`` as it goes (what was measured stays when a later step fails)."""
    survivors = [n for n in NODES if n != VICTIM]
    for name in NODES:
        pool.start(name)
    await pool.until(lambda: all_alive(pool), 90, "three nodes heartbeating")
    t_sessions = time.monotonic()
    await asyncio.to_thread(pool.store_sessions, ids)
    await pool.spread(list(NODES), per_node=len(ids) // len(NODES), within=180)
    await pool.until(lambda: all_trading(pool), 60, "every user trading")
    res["all_trading_seconds"] = round(time.monotonic() - t_sessions, 1)
    on = await pool.running()
    victims = [u for u, ns in on.items() if ns == [VICTIM]]
    pids = {n: await pool.pids(n) for n in NODES}
    seen += [p for ps in pids.values() for p in ps]
    log(f"  every user trades after {res['all_trading_seconds']} s; kill -9 of node {VICTIM} "
        f"({len(victims)} users)")  # fmt: skip
    killed_at = await sim_ms(link)
    await asyncio.to_thread(pool.kill_tree, VICTIM)
    res["user_processes_left_after_kill"] = len(await wait_gone(pids[VICTIM], 5))
    gone_at = await sim_ms(link)  # every process of c is gone: later orders are a new owner's
    res["kill_to_gone_ms"] = round(gone_at - killed_at, 1)
    nexts = await next_orders(link, victims, gone_at, TAKEOVER_BOUND)
    waits = sorted(round((ms - killed_at) / 1000, 3) for ms in nexts.values())
    res["orphaned_users"] = len(victims)
    res["with_next_order"] = len(waits)
    res["kill_to_next_order_seconds"] = {
        "min": waits[0] if waits else None,
        "median": percentile(waits, 50),
        "p95": percentile(waits, 95),
        "max": waits[-1] if waits else None,
        "each": waits,
    }
    leases = await asyncio.to_thread(pool.leases)
    res["new_owners"] = {u: (leases.get(u) or [None])[0] for u in victims}
    res["every_user_new_owner"] = bool(victims) and all(
        n in survivors for n in res["new_owners"].values()
    )
    try:  # the survivors' own rows: each of the users on exactly one of them
        await pool.until(lambda: one_node_each(pool, survivors), 30, "one node per user")
        res["every_user_on_one_node"] = True
    except AssertionError:
        res["every_user_on_one_node"] = False
    for n in survivors:
        seen += await pool.pids(n)
    await stop_survivors(pool, survivors)
    res.update(await invariant(link, ids))
    res["bar_le_60s"] = {
        "value_max_seconds": res["kill_to_next_order_seconds"]["max"],
        "met": bool(victims)
        and len(waits) == len(victims)
        and waits[-1] <= BAR_SECONDS
        and res["every_user_new_owner"],
    }


async def all_alive(pool: Pool) -> bool:
    try:
        st = await pool.nodes[NODES[0]].status()
    except (SupervisorNotRunning, TimeoutError):  # still starting
        return False
    return {n.node for n in st.nodes if n.alive} >= set(NODES)


async def all_trading(pool: Pool) -> bool:
    """Every user's row on the node running it shows a trade."""
    traded: set[str] = set()
    for name, d in pool.nodes.items():
        for (_sid, uid), st in (await d.users()).items():
            if st.node == name and st.pid and st.trades >= 1:
                traded.add(uid)
    return traded >= set(pool.users)


async def one_node_each(pool: Pool, names: list[str]) -> bool:
    return all(len(ns) == 1 for ns in (await pool.running(names)).values())


async def next_orders(
    link: SimLink, users: list[str], after_ms: float, within: float
) -> dict[str, float]:
    """user -> the sim's stamp of its first order after ``after_ms``; polled every half
    second (the figure is the sim's stamp, not the poll), for at most ``within`` s."""
    found: dict[str, float] = {}
    deadline = Deadline(within)
    while not deadline.passed:
        for u in [u for u in users if u not in found]:
            ms = first_order_after(await link.admin.account(acct(u)), after_ms)
            if ms is not None:
                found[u] = ms
        if len(found) == len(users):
            break
        await asyncio.sleep(0.5)
    return found


async def stop_survivors(pool: Pool, names: list[str]) -> None:
    """SIGTERM: they drain (finish the round trip, sell) and exit; bounded."""
    for n in names:
        with contextlib.suppress(ProcessLookupError):
            pool.nodes[n].signal(signal.SIGTERM)
    for n in names:
        with contextlib.suppress(AssertionError):
            await pool.nodes[n].wait_exit(60)


async def invariant(link: SimLink, ids: list[str]) -> dict[str, Any]:
    """From the sim's record of every account: round trips, any two open at once, orders
    still open after the survivors stopped."""
    trips = overlaps = open_orders = 0
    bad: list[str] = []
    for u in ids:
        a = await link.admin.account(acct(u))
        trips += len(round_trips(a))
        found = overlapping_round_trips(a)
        overlaps += len(found)
        bad += [u] if found else []
        open_orders += a["open_orders"]
    return {
        "round_trips": trips,
        "overlapping_round_trips": overlaps,
        "accounts_with_overlap": bad,
        "open_orders_after_stop": open_orders,
        "invariant_held": overlaps == 0,
    }


def stop_nodes(pool: Pool, seen: list[int]) -> int:
    """Every node's process group killed, its directory removed; the user processes seen
    that are still alive after that (0 expected)."""
    for d in pool.nodes.values():
        if d.proc is not None:  # the group too: a supervisor gone early may leave children
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(d.proc.pid, signal.SIGKILL)
    pool.cleanup()
    return len(pids_alive(seen))
