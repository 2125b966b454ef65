"""Hostile replies through a real rewriting proxy (a subprocess) in front of the sim.

What a user would notice: a poisoned number never becomes a volume, a price or a
multiplier; it is a BadResponse naming the endpoint and the field, only the poisoned
account is affected, and the user stream survives a poisoned report.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from config.settings import EffectiveSettings, ExchangeSettings
from exchange.client import AlphaClient
from exchange.errors import BadResponse
from exchange.models import ExecutionReport
from exchange.sim.testing import SimHarness
from exchange.stream import StreamConnected, UserStream
from supervisor.volumes import check_volumes
from tests.exchange.test_against_sim import has_report, oto_for
from tests.exchange.test_stream import Collector, count
from tests.hostile_proxy import ProxyProcess

HOSTILE_VALUES = [
    ("NaN", "is NaN"),
    ("Infinity", "is Infinity"),
    ("-500", "is negative (-500)"),
    ("1e999", "is absurdly large (1E+999;"),
]


@pytest.fixture
async def sim():
    async with SimHarness(seed=1, fill_delay=0, volume_lag=0) as h:
        yield h


@pytest.fixture
async def proxy(sim, tmp_path):
    async with ProxyProcess(sim.base_url, tmp_path) as p:
        yield p


async def until(check, within: float = 10.0) -> None:
    """Wait until the async ``check()`` holds, polling, or fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def proxy_rewrites(proxy: ProxyProcess, n: int) -> bool:
    return sum((await proxy.stats()).values()) >= n


def client_for(sim: SimHarness, base_url: str, account: str) -> AlphaClient:
    return AlphaClient(
        base_url=base_url,
        credentials=sim.credentials(account),
        request_timeout=5.0,
        retry_base_delay=0,
        retry_max_delay=0,
    )


async def test_hostile_volume_ticker_and_token_list_are_bad_responses_naming_the_field(sim, proxy):
    await sim.admin.set_volume("alice", "KOGE", Decimal(100))
    cases = [
        (
            "user-volume",
            "data.tradeVolumeInfoList[tokenName=KOGE].volume",
            lambda c: c.user_volume(),
            "user-volume: data.tradeVolumeInfoList[KOGE].volume",
        ),
        (
            "alpha-trade/ticker",
            "data.lastPrice",
            lambda c: c.ticker("ALPHA_22USDT"),
            "ticker: data.lastPrice",
        ),
        (
            "token/list",
            "data[symbol=AOP].mulPoint",
            lambda c: c.token("KOGE"),  # the poisoned token is another one: still refused
            "token/list: data[AOP].mulPoint",
        ),
    ]
    async with client_for(sim, proxy.base_url, "alice") as alice:
        for path, field, call, where in cases:
            for value, problem in HOSTILE_VALUES:
                proxy.set_rules({"path": path, "field": field, "value": value})
                with pytest.raises(BadResponse) as e:
                    await call(alice)
                assert e.value.message.startswith(f"{where} {problem}"), e.value.message
            proxy.set_rules()  # switched off mid-run: the same call succeeds again
            assert await call(alice)
    assert sum((await proxy.stats()).values()) == len(cases) * len(HOSTILE_VALUES)


def pair(user: str, target: int) -> EffectiveSettings:
    return EffectiveSettings(
        strategy_id="s1",
        strategy_name="S1",
        user_id=user,
        target_token="KOGE",
        target_volume=Decimal(target),
    )


async def test_check_volumes_reports_the_poisoned_user_and_reads_the_others(sim, proxy):
    for user, volume in (("alice", 50), ("bob", 40), ("carol", 500)):
        await sim.admin.set_volume(user, "KOGE", Decimal(volume))
    pairs = [pair("alice", 100), pair("bob", 100), pair("carol", 100)]
    exchange = ExchangeSettings(base_url=proxy.base_url, request_timeout_seconds=5)
    for value, problem in HOSTILE_VALUES:
        proxy.set_rules(
            {
                "path": "user-volume",
                "account": "alice",
                "field": "data.tradeVolumeInfoList[*].volume",
                "value": value,
            }
        )
        results = {r.user_id: r for r in await check_volumes(pairs, sim.credentials, exchange)}
        alice, bob, carol = results["alice"], results["bob"], results["carol"]
        assert alice.current is None and not alice.at_target
        assert f"user-volume: data.tradeVolumeInfoList[KOGE].volume {problem}" in alice.error
        assert (bob.current, bob.at_target, bob.error) == (Decimal(40), False, None)
        assert (carol.current, carol.at_target, carol.error) == (Decimal(500), True, None)


async def test_a_poisoned_execution_report_is_dropped_and_the_stream_lives_on(sim, proxy):
    async with client_for(sim, proxy.base_url, "alice") as alice:
        stream = UserStream(
            alice, ws_url=proxy.ws_url, ping_interval=0.2, initial_backoff=0.01, stable_after=0
        )
        col = Collector()
        task = asyncio.create_task(stream.run(col))
        try:
            await col.wait_for(count(StreamConnected, 1))
            proxy.set_rules({"path": "/w3w/stream", "field": "data.z", "value": "NaN"})
            _, req = await oto_for(alice, "KOGE")
            with capture_logs() as logs:
                poisoned = await alice.place_oto(req)
                # buy NEW, sell PENDING, buy FILLED, sell NEW, sell FILLED: all poisoned
                await until(lambda: proxy_rewrites(proxy, 5))
                proxy.set_rules()
                clean = await alice.place_oto(req)
                await col.wait_for(has_report(clean.pending_order_id, "FILLED"))
            seen = {e.order_id for e in col.of(ExecutionReport)}
            assert {poisoned.working_order_id, poisoned.pending_order_id}.isdisjoint(seen)
            dropped = [e for e in logs if e["event"] == "stream_report_dropped"]
            assert len(dropped) == 5
            assert {e["problem"] for e in dropped} == {"user stream: data.z (cum_qty) is NaN"}
            assert stream.connected and stream.connects == 1 and not task.done()
            # REST, the backstop, still tells what became of the poisoned OTO
            now = int(sim.sim.clock.time() * 1000)
            legs = await alice.order_history(start_ms=now - 60_000, end_ms=now + 1)
            status = {h.order_id: h.status for h in legs}
            assert status[poisoned.working_order_id] == status[poisoned.pending_order_id]
            assert status[poisoned.pending_order_id] == "FILLED"
        finally:
            await stream.close()
            await asyncio.wait_for(task, 5)
