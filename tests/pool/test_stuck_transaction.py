"""Issue 22: a node cut from PostgreSQL in the middle of a transaction (its link dead but
never closed, so the server keeps the transaction and its row locks) must not stall the
other nodes: they keep renewing their leases and their users keep trading."""

from __future__ import annotations

import time

import psycopg
import pytest

from config.store_section import StoreSettings
from exchange.sim.testing import SimHarness
from tests.pool.harness import LEASE, Pool, acct

# a real supervisor on PostgreSQL, seconds-scale: with the serial tests (two at a time)
pytestmark = [pytest.mark.serial]


@pytest.fixture
async def sim():
    async with SimHarness(fill_delay=0.05, volume_lag=0) as h:
        yield h


@pytest.mark.timeout(120)
async def test_a_transaction_a_cut_node_left_open_stalls_no_other_node(sim, pg_url):
    pool = Pool(sim, pg_url, ["1", "2", "3"], target=100_000)
    params = StoreSettings(url=pg_url).connect_params()
    # node c holds user 3, and was cut while renewing it: the row updated, never committed
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO leases (user_id, node, epoch, expires_at)"
            " VALUES ('3', 'c', 1, now() + interval '1 hour')"
        )
    stuck = psycopg.connect(**params)  # a transaction of its own, left open
    try:
        stuck.execute("UPDATE leases SET expires_at = expires_at WHERE user_id = '3'")
        a = pool.start("a")
        await pool.until(lambda: _running(pool, ["1", "2"]), 30, "node a running users 1 and 2")
        since = time.monotonic()
        placed = {u: await _placed(sim, u) for u in ("1", "2")}

        async def traded_on():  # a lease later (five renewals), both still trading
            if time.monotonic() - since < LEASE:
                return None
            now = {u: await _placed(sim, u) for u in placed}
            return all(now[u] > placed[u] + 5 for u in placed) and now

        await pool.until(traded_on, 30, "users 1 and 2 trading on, a lease later")
        assert not a.events("pool_fenced") and not a.events("store_unreachable"), pool.pool_log()
        assert (await pool.running(["a"]))["3"] == []  # c's user stays c's
    finally:
        stuck.close()
        pool.cleanup()


async def _running(pool: Pool, users: list[str]) -> bool:
    on = await pool.running(["a"])
    return all(on[u] == ["a"] for u in users)


async def _placed(sim, user: str) -> int:
    return int((await sim.admin.account(acct(user)))["oto_count"])
