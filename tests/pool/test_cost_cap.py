"""Issue 22: ``max_daily_cost_usdt`` caps a user's whole day in a pool, whichever nodes
traded it: a node counts what the user's round trips cost today on the other nodes (the
shared books) before each round trip, from before its first one."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest

from config.store_section import StoreSettings
from exchange.sim.testing import SimHarness
from tests.pool.harness import Pool, acct

# a real supervisor on PostgreSQL, seconds-scale: with the serial tests (two at a time)
pytestmark = [pytest.mark.serial]
CAP = Decimal("0.05")


@pytest.fixture
async def sim():
    async with SimHarness(fill_delay=0.02, volume_lag=0) as h:
        yield h


def traded_elsewhere(url: str, user: str, cost: Decimal, trips: int = 3) -> None:
    """Round trips of ``user`` that node "z" (since gone) traded today and copied into
    the shared books, costing ``cost`` in all."""
    day = datetime.now(UTC).date().isoformat()
    each = cost / trips
    row = {"kind": "oto", "placed": 1, "buy_quote": "10", "cost": str(each)}
    with psycopg.connect(**StoreSettings(url=url).connect_params()) as conn:
        for i in range(trips):
            conn.execute(
                "INSERT INTO books (order_id, user_id, strategy_id, day, token, node, row)"
                " VALUES (%s, %s, 'koge', %s, 'KOGE', 'z', %s)",
                (f"z-{user}-{i}", user, day, json.dumps(row)),
            )


@pytest.mark.timeout(120)
async def test_a_day_that_cost_its_cap_on_other_nodes_is_over_on_this_one(sim, pg_url):
    pool = Pool(sim, pg_url, ["1", "2", "3"], target=100_000, max_daily_cost_usdt=float(CAP))
    try:
        traded_elsewhere(pg_url, "1", CAP + Decimal("0.01"))  # over the cap already
        traded_elsewhere(pg_url, "2", CAP - Decimal("0.01"))  # all but a cent of it
        a = pool.start("a")

        async def over():  # every user's day ended here (the lease says why)
            leases = await asyncio.to_thread(pool.leases)
            return all(leases.get(u, (None, 0, None))[2] for u in pool.users) and leases

        leases = await pool.until(over, 90, "every user ending its day on node a")
        placed = {u: (await sim.admin.account(acct(u)))["oto_count"] for u in pool.users}
        assert placed["1"] == 0, placed  # never a round trip: the cap was spent elsewhere
        assert 0 < placed["2"] < placed["3"], placed  # a cent's worth, then the whole cap
        status = json.loads((await a.acli("status", "--json")).stdout)
        users = {u["user_id"]: u for st in status["strategies"] for u in st["users"]}
        for uid in ("1", "2"):
            assert "max_daily_cost_usdt" in users[uid]["reason"], (uid, users[uid], leases)
            assert "other nodes" in users[uid]["reason"], users[uid]
            assert Decimal(users[uid]["user_cost_today"]) >= CAP, users[uid]
        assert "other nodes" not in users["3"]["reason"], users["3"]
    finally:
        pool.cleanup()
