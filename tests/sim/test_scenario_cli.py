"""Scenario files, the seeded price walk, and `alphavol sim` as a real subprocess."""

from __future__ import annotations

import asyncio
import signal
import sys
from decimal import Decimal
from pathlib import Path

import aiohttp

from exchange.sim.testing import SimHarness
from exchange.sim.universe import default_tokens

D = Decimal
SCENARIO = """
options:
  starting_usdt: "500"
  volume_lag: 0
tokens:
  - symbol: ZED
    alpha_id: ALPHA_777
    mul_point: 2
    price: "2.5"
    tick_size: "0.0001"
    step_size: "0.1"
    max_qty: "1000"
jumps:
  - at: 0.05
    symbol: ZED
    price: "2.0"
accounts:
  whale:
    USDT: "99999"
    ZED: "10"
"""


async def test_scenario_tokens_accounts_and_scripted_jump(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO)
    async with SimHarness(scenario=str(path), price_interval=0) as h:
        creds = h.credentials("whale")
        async with aiohttp.ClientSession(cookies=creds.cookies, headers=creds.headers) as s:
            async with s.get(
                h.base_url + "/bapi/defi/v1/public/alpha-trade/get-exchange-info"
            ) as r:
                symbols = (await r.json())["data"]["symbols"]
            assert [x["symbol"] for x in symbols] == ["ALPHA_777USDT"]
            assert symbols[0]["filters"][0]["tickSize"] == "0.00010000"
            acc = await h.admin.account("whale")
            assert D(acc["balances"]["USDT"]["free"]) == D(99999)
            assert D(acc["balances"]["ALPHA_777"]["free"]) == D(10)
            assert D((await h.admin.account("minnow"))["balances"]["USDT"]["free"]) == D(500)

            async with s.post(h.base_url + "/bapi/defi/v1/private/alpha-trade/get-listen-key") as r:
                key = (await r.json())["data"]
            ws = await s.ws_connect(h.ws_url)
            await ws.send_json({"method": "SUBSCRIBE", "params": [f"alpha@{key}"], "id": 1})
            await ws.receive_json(timeout=5)
            body = {
                "baseAsset": "ALPHA_777",
                "quoteAsset": "USDT",
                "side": "BUY",
                "price": "2.1",
                "quantity": "10",
                "paymentDetails": [{"amount": "21", "paymentWalletType": "CARD"}],
                "orderType": "LIMIT",
            }
            async with s.post(
                h.base_url + "/bapi/asset/v1/private/alpha-trade/order/place", json=body
            ) as r:
                assert (await r.json())["success"]
            assert (await ws.receive_json(timeout=5))["data"]["X"] == "NEW"
            filled = (await ws.receive_json(timeout=5))["data"]  # after the jump to 2.0
            assert filled["X"] == "FILLED" and D(filled["L"]) == D("2.0")
            await ws.close()


async def test_price_walk_is_seeded_and_follows_the_sim_clock() -> None:
    prices = []
    for _ in range(2):
        async with SimHarness(seed=42, volatility="0.01", price_interval=0) as h:
            before = (await h.admin.state())["prices"]["KOGE"]
            await h.admin.advance_time(60)
            after = (await h.admin.state())["prices"]["KOGE"]
            assert after != before
            prices.append(after)
    assert prices[0] == prices[1]


async def test_cli_prints_urls_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exchange.sim.cli",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--seed",
        "7",
        "--fill-delay",
        "0",
        "--volume-lag",
        "0",
        "--starting-usdt",
        "123",
        "--spread",
        "0.001",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(20):
            base = (await proc.stdout.readline()).decode().strip()
            ws = (await proc.stdout.readline()).decode().strip()
        assert base.startswith("base_url=http://127.0.0.1:")
        port = base.rsplit(":", 1)[1]
        assert ws == f"ws_url=ws://127.0.0.1:{port}/w3w/stream"
        base_url = base.split("=", 1)[1]
        async with aiohttp.ClientSession() as s:
            async with s.get(base_url + "/sim/v1/accounts/zoe") as r:
                acc = (await r.json())["data"]
            async with s.get(base_url + "/sim/v1/state") as r:
                tokens = (await r.json())["data"]["tokens"]
        assert D(acc["balances"]["USDT"]["free"]) == D(123)
        assert {D(t["spread"]) for t in tokens.values()} == {D("0.001")}
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_the_shipped_example_scenario_loads() -> None:
    from importlib import resources

    path = resources.files("exchange.sim").joinpath("scenario_example.yaml")
    async with SimHarness(scenario=str(path), price_interval=0) as h:
        state = await h.admin.state()
        # extra_tokens add to the default universe
        assert set(state["prices"]) == {t.symbol for t in default_tokens()} | {"NEWB"}
        assert state["tokens"]["NEWB"]["mul_point"] == 4  # listed 3 days ago on BSC
        assert state["config"]["fill_delay"] == 0.2
        acc = await h.admin.account("alice")
        assert acc["balances"]["ALPHA_22"]["free"] == "0.5"
