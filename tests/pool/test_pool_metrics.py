"""Issue 22: ``GET /metrics`` on any node of a pool shows every user of the pool (the rows
``alphavol status`` shows) with the node that runs it, and every node, up or down."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from exchange.sim.testing import SimHarness
from tests.pool.harness import LEASE, Pool, acct
from tests.supervisor.test_metrics import free_port, samples, scrape

# seconds-scale bounds, real supervisors: with the serial tests (two at a time)
pytestmark = [pytest.mark.serial]

USERS = [str(i) for i in range(1, 9)]


@pytest.fixture
async def sim():
    async with SimHarness(fill_delay=0.05, volume_lag=0) as h:
        yield h


def from_status(doc: dict) -> dict:
    """(user, strategy) -> (node, state, round trips, cost, volume) as status shows it."""
    return {
        (u["user_id"], st["strategy_id"]): (
            u.get("node", ""),
            u["state"],
            float(u.get("trades", 0)),  # omitted while 0 (a user not traded yet)
            float(Decimal(u.get("cost_today", "0"))),
            float(Decimal(u["current_volume"])) if "current_volume" in u else None,
        )
        for st in doc["strategies"]
        for u in st["users"]
    }


def from_scrape(fam: dict) -> dict:
    """The same from a scrape (each row's state: the one at 1)."""
    keys = ("user_id", "strategy_id", "node")
    trips = samples(fam, "alphavol_round_trips_today", *keys)
    cost = samples(fam, "alphavol_cost_usdt_today", *keys)
    volume = samples(fam, "alphavol_volume", *keys)
    states = samples(fam, "alphavol_state", *keys, "state")
    out = {}
    for (uid, sid, node), n in trips.items():
        (state,) = [
            s for (u, i, nd, s), v in states.items() if (u, i, nd) == (uid, sid, node) and v
        ]
        out[(uid, sid)] = (node, state, n, cost[(uid, sid, node)], volume.get((uid, sid, node)))
    return out


@pytest.mark.timeout(200)
async def test_a_scrape_of_any_node_shows_the_whole_pool_and_a_dead_node(sim, pg_url):
    pool = Pool(sim, pg_url, USERS, target=600)
    port = free_port()
    try:
        a = pool.start("a", sections={"metrics": {"listen": f"127.0.0.1:{port}"}})
        pool.start("b")
        on = await pool.spread(["a", "b"], per_node=4, within=60)
        where = {u: ns[0] for u, ns in on.items()}

        async def nodes_in_scrape():  # b's rows: as of its last heartbeat (a tick away)
            got = from_scrape(await scrape(port))
            return got if {u: got[(u, "koge")][0] for u in USERS} == where else None

        await pool.until(nodes_in_scrape, 10, f"node a's metrics showing {where}")

        async def status_of_a() -> dict:
            res = await a.acli("status", "--json")
            assert res.returncode == 0, res.stderr
            return json.loads(res.stdout)

        # the same users on the same nodes as `status --json` on node a shows them
        shown = from_status(await status_of_a())
        got = await pool.until(nodes_in_scrape, 10, f"node a's metrics showing {where}")
        assert {k: r[0] for k, r in got.items()} == {k: r[0] for k, r in shown.items()}
        assert {k for k, r in got.items() if r[0] == "b"}, got

        # once every user is DONE: each user's day, on node a, is the exchange's whole day
        # (a user handed from one node to the other counts both nodes' round trips), and
        # the scrape shows what status shows
        async def whole_days():
            doc = await status_of_a()
            users = [u for st in doc["strategies"] for u in st["users"]]
            if not all(u["state"] == "DONE" for u in users):
                return None
            for u in users:
                placed = (await sim.admin.account(acct(u["user_id"])))["oto_count"]
                if u.get("user_round_trips") != placed:
                    return None
            got = from_scrape(await scrape(port))
            return doc if got == from_status(doc) == from_status(await status_of_a()) else None

        doc = await pool.until(whole_days, 120, "every user DONE, its whole day on node a")
        fam = await scrape(port)
        points = samples(fam, "alphavol_points_today", "user_id", "node")
        points_shown = {
            (u["user_id"], u.get("node", "")): u["points_today"]
            for st in doc["strategies"]
            for u in st["users"]
        }
        assert points == {k: float(v) for k, v in points_shown.items()}
        assert all(v > 0 for v in points.values()), points
        fam = await scrape(port)
        assert samples(fam, "alphavol_pool_node_up", "node") == {("a",): 1.0, ("b",): 1.0}
        assert samples(fam, "alphavol_pool_store_up", "node") == {("a",): 1.0}
        assert samples(fam, "alphavol_supervisor_uptime_seconds", "node")[("a",)] > 0

        # node b killed outright: down in a's metrics
        pool.kill_tree("b")

        async def b_down():
            fam = await scrape(port)
            up = samples(fam, "alphavol_pool_node_up", "node")
            return fam if up == {("a",): 1.0, ("b",): 0.0} else None

        fam = await pool.until(b_down, 2 * LEASE + 5, "node b down in node a's metrics")
        assert samples(fam, "alphavol_pool_node_leases", "node")[("b",)] == 0
        assert samples(fam, "alphavol_pool_node_users", "node")[("b",)] == 0
        assert samples(fam, "alphavol_pool_node_heartbeat_age_seconds", "node")[("b",)] >= LEASE
        assert set(from_scrape(fam)) == set(shown)  # every user of the pool still shown
    finally:
        pool.cleanup()
