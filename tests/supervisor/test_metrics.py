"""Prometheus metrics from a real supervisor with real user processes on the sim."""

from __future__ import annotations

import json
import random
import socket
from decimal import Decimal

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.supervisor.harness import Deployment, strategy
from tests.supervisor.test_real_users import FAST

OWNERS = {"1": "metrics-owner-one", "2": "metrics-owner-two"}


def free_port() -> int:
    """A free port below the kernel's ephemeral range: a port handed out by bind(0) here
    could be handed out again to a simulator of another test worker before the
    supervisor binds it (a 404 from that simulator)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 30000)
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-30000")


async def scrape(port: int) -> dict:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = await resp.text()
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(families: dict, name: str, *keys: str) -> dict:
    return {
        tuple(s.labels[k] for k in keys): s.value
        for f in families.values()
        for s in f.samples
        if s.name == name
    }


async def running(d: Deployment, sim, sections: dict) -> None:
    d.store({u: sim.credentials(a) for u, a in OWNERS.items()})
    d.write_config(
        [
            strategy("koge", ["1", "2"], target=150, amount=10),
            strategy("aop", ["2"], target=200, amount=10, token="AOP"),
        ],
        sections=sections,
    )
    d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    await d.wait_users(  # the day's figures: read from the books just after the trades
        lambda us: all(u.state == "DONE" and u.points_today for u in us.values()),
        60,
        "every user DONE, with its points",
    )


async def test_a_scrape_parses_and_its_figures_are_the_status(deploy, sim):
    port = free_port()
    d: Deployment = deploy()
    await running(d, sim, {"metrics": {"listen": f"127.0.0.1:{port}"}})
    status = json.loads((await d.acli("status", "--json")).stdout)
    fam = await scrape(port)

    volume = samples(fam, "alphavol_volume", "user_id", "strategy_id")
    cost = samples(fam, "alphavol_cost_usdt_today", "user_id", "strategy_id")
    trips = samples(fam, "alphavol_round_trips_today", "user_id", "strategy_id")
    state = samples(fam, "alphavol_state", "user_id", "strategy_id", "state")
    points = samples(fam, "alphavol_points_today", "user_id")
    seen = 0
    for st in status["strategies"]:
        for u in st["users"]:
            key = (u["user_id"], st["strategy_id"])
            assert volume[key] == float(Decimal(u["current_volume"]))
            assert cost[key] == float(Decimal(u["cost_today"]))
            assert trips[key] == u["trades"] > 0
            assert state[(*key, "DONE")] == 1.0 and state[(*key, "RUNNING")] == 0.0
            assert points[(u["user_id"],)] == u["points_today"] > 0
            assert Decimal(u["cost_per_point"]) > 0
            seen += 1
    assert seen == 3
    assert samples(fam, "alphavol_supervisor_uptime_seconds")[()] > 0
    assert samples(fam, "alphavol_supervisor_reloads_total", "result")[("ok",)] == 0
    assert d.events("metrics_listening") and not d.events("metrics_listening_remote")


async def test_a_non_loopback_address_needs_allow_remote_and_is_logged(deploy, sim):
    port = free_port()
    d: Deployment = deploy()
    d.store({u: sim.credentials(a) for u, a in OWNERS.items()})
    d.write_config(
        [strategy("koge", ["1"], target=150)], sections={"metrics": {"listen": f"0.0.0.0:{port}"}}
    )
    refused = await d.acli("check")
    assert refused.returncode == 2
    assert "metrics.listen" in refused.stderr and "allow_remote" in refused.stderr
    await running(d, sim, {"metrics": {"listen": f"0.0.0.0:{port}", "allow_remote": True}})
    assert (await scrape(port))["alphavol_volume"].samples
    (warning,) = d.events("metrics_listening_remote")
    assert warning["level"] == "warning" and warning["listen"] == f"0.0.0.0:{port}"
