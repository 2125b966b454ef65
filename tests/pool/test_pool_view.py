"""Issue 22: one view of the pool from any node, and operator commands that reach the node
running a user through the store; a node with another plan is refused; a node that cannot
reach the store trades nothing and says so; the store's password shows nowhere."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from exchange.sim.testing import SimHarness
from tests.config.conftest import bash_curl
from tests.pgcluster import PASSWORD
from tests.pool.harness import LEASE, Pool, acct
from tests.supervisor.harness import strategy

# seconds-scale bounds, real supervisors: with the serial tests (two at a time)
pytestmark = [pytest.mark.serial]


@pytest.fixture
async def sim():
    async with SimHarness(fill_delay=0.05, volume_lag=0) as h:
        yield h


def status_json(d) -> dict:
    res = d.cli("status", "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def users_of(doc: dict) -> dict[str, dict]:
    return {u["user_id"]: u for st in doc["strategies"] for u in st["users"]}


@pytest.mark.timeout(200)
async def test_any_node_shows_the_pool_and_commands_reach_the_owner(sim, pg_url):
    pool = Pool(sim, pg_url, ["1", "2", "3", "4", "5"], target=3000, stored=["1", "2", "3", "4"])
    try:
        a, b = pool.start("a"), pool.start("b")
        on = await pool.spread(["a", "b"], per_node=2, within=60)
        where = {u: ns[0] for u, ns in on.items() if ns}

        shown: dict = {}

        async def view_of_a():  # b's rows are as of its last heartbeat (a tick away)
            doc = await asyncio.to_thread(status_json, a)
            shown.update({u: (r.get("node"), r["state"]) for u, r in users_of(doc).items()})
            return doc if {u: shown[u][0] for u in where} == where else None

        doc = await pool.until(view_of_a, 10, f"node a showing {where}: {shown}")
        users = users_of(doc)
        assert users["5"]["state"] == "PENDING" and "node" not in users["5"]  # no session yet
        assert {n["node"]: n["alive"] for n in doc["pool"]["nodes"]} == {"a": True, "b": True}
        assert PASSWORD not in json.dumps(doc)

        # stop, from node a, a user node b runs: b stops it; nobody claims it today
        victim = next(u for u, ns in on.items() if ns == ["b"])
        res = await asyncio.to_thread(a.cli, "stop", "--user", victim)
        assert res.returncode == 0, res.stderr

        async def stopped_on_b():
            st = (await b.users()).get(("koge", victim))
            return st is not None and st.state == "STOPPED"

        await pool.until(stopped_on_b, 3 * LEASE / 5 + 5, f"user {victim} stopped on node b")
        await asyncio.sleep(2 * LEASE / 5)  # two ticks: a stopped user is not claimed again
        assert (await pool.running())[victim] == []

        # start it again from node a: a node with room runs it
        res = await asyncio.to_thread(a.cli, "start", "--user", victim)
        assert res.returncode == 0, res.stderr
        await pool.until(
            lambda: _runs(pool, victim), 20, f"user {victim} running again after start"
        )

        # a session stored on node a's side of the pool: some node runs user 5, no restart
        curl = a.dir / "user5.curl"
        creds = sim.credentials(acct("5"))
        curl.write_text(bash_curl(creds.cookies, creds.headers))
        res = await asyncio.to_thread(a.cli, "users", "add", "5", "--curl", str(curl))
        assert res.returncode == 0, res.stderr
        await pool.until(lambda: _runs(pool, "5"), 20, "user 5 running after users add")

        # a node killed outright shows as no longer heartbeating
        pool.kill_tree("b")

        async def b_silent():
            doc = await asyncio.to_thread(status_json, a)
            return not {n["node"]: n["alive"] for n in doc["pool"]["nodes"]}["b"]

        await pool.until(b_silent, 2 * LEASE, "node b shown without heartbeat")
        res = await asyncio.to_thread(a.cli, "status")
        assert "node b: NO HEARTBEAT" in res.stdout, res.stdout
    finally:
        pool.cleanup()


async def _runs(pool: Pool, user: str) -> bool:
    return len((await pool.running())[user]) == 1


@pytest.mark.timeout(120)
async def test_a_node_with_other_strategies_is_refused_and_an_unreachable_store_trades_nothing(
    sim, pg_url, pg_cluster
):
    pool = Pool(sim, pg_url, ["1", "2"], target=3000)
    try:
        pool.start("a")
        await pool.until(lambda: _runs(pool, "1"), 30, "node a running user 1")
        res = await asyncio.to_thread(pool.nodes["a"].cli, "reload")  # a pool node reloads
        assert res.returncode == 0, res.stderr
        assert (await pool.running())["1"] == ["a"]
        other = pool.start("other")
        other.write_config(
            [strategy("koge", ["1", "2"], target=5000, amount=10)],
            sections={"store": {"url": pool.url, "lease_seconds": LEASE}},
        )
        other.proc.kill()
        other.proc.wait(10)
        other.start(
            once=False, child=None, args=("--node", "other"), ALPHAVOL_STORE_PASSWORD=PASSWORD
        )
        assert await other.wait_exit(30) == 2, other.diagnose()
        assert "strategies koge differ from those of node a" in other.stderr

        # a store nobody answers on (a closed port): the node runs, says so, trades nothing
        closed = pg_url.replace(f":{pg_cluster.port}/", ":1/").replace(
            "alphavol@", f"alphavol:{PASSWORD}@"
        )
        lone = pool.start("lone", url=closed)
        await lone.wait_ready()
        await asyncio.sleep(1.5)
        doc = await asyncio.to_thread(status_json, lone)
        assert doc["pool"]["store"].startswith("unreachable")
        assert all(u.get("node") != "lone" for u in users_of(doc).values())
        assert lone.proc.poll() is None
        for d in (lone, pool.nodes["a"]):
            assert PASSWORD not in d.stderr + d.stdout
            cmdline = await asyncio.to_thread(Path(f"/proc/{d.proc.pid}/cmdline").read_bytes)
            assert PASSWORD.encode() not in cmdline
        assert PASSWORD not in json.dumps(doc)
    finally:
        pool.cleanup()
