"""The bid/ask spread: fills at the ask (buys) and the bid (sells), and the public book
(fullDepth, ticker, klines) shows the prices the engine fills at."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest

from exchange.sim.testing import SimHarness
from tests.sim.conftest import koge_oto, open_browser

D = Decimal
KOGE_TICK = D("0.00000001")


@pytest.fixture
async def harness() -> AsyncIterator[SimHarness]:
    """The default universe with each token's own spread (not the tests' calm default)."""
    async with SimHarness(price_interval=0, spread=None) as h:
        yield h


async def best(browser, symbol: str = "ALPHA_22USDT") -> tuple[Decimal, Decimal]:
    depth = (await browser.get("depth", symbol=symbol, limit="5"))["data"]
    return D(depth["bids"][0][0]), D(depth["asks"][0][0])


def trunc8(d: Decimal) -> Decimal:
    return d.quantize(D("0.00000001"), ROUND_DOWN)


async def test_marketable_buy_fills_at_the_ask_and_sell_at_the_bid(harness, alice) -> None:
    bid, ask = await best(alice)
    mid = D((await alice.get("ticker"))["data"]["lastPrice"])
    assert bid < mid < ask
    # KOGE's spread is 2 bp of the price, in whole ticks
    assert abs((ask - bid) - mid * D("0.0002")) <= KOGE_TICK
    listed = {t["symbol"]: D(t["price"]) for t in (await alice.get("token_list"))["data"]}
    assert listed["KOGE"] == mid

    async with alice.stream() as stream:
        # limits far through the book: the fills are at the book, not at the limits
        assert (await alice.post("oto", koge_oto(price="50", qty="0.2082", pending="46")))[
            "success"
        ]
        _new, _pending, buy, _sell_new, sell = await stream.reports(5)
    assert D(buy["L"]) == ask and D(sell["L"]) == bid

    # what the round trip cost the account is the spread on the quantity plus the fees
    acc = await harness.admin.account("alice")
    spent = D(10000) - D(acc["balances"]["USDT"]["free"])
    sold = D(sell["z"])
    sell_quote = trunc8(sold * bid)
    assert spent == trunc8(D("0.2082") * ask) - sell_quote + trunc8(sell_quote * D("0.0001"))
    assert spent > trunc8(sold * (ask - bid))


async def test_a_buy_inside_the_spread_rests_until_the_book_reaches_it(harness, alice) -> None:
    bid, ask = await best(alice)
    inside = ask - KOGE_TICK  # above the mid, still below the ask
    async with alice.stream() as stream:
        body = koge_oto(price=str(inside), qty="0.2082", pending="40")
        assert (await alice.post("oto", body))["success"]
        assert [r["X"] for r in await stream.reports(2)] == ["NEW", "PENDING"]
        assert len((await alice.get("open_orders"))["data"]) == 2
        await harness.admin.set_token("KOGE", spread="0")  # the book closes to the mid
        buy = (await stream.reports(1))[0]
    assert buy["X"] == "FILLED" and bid < D(buy["L"]) < ask


async def test_depth_levels_and_limits(harness, alice) -> None:
    depth = (await alice.get("depth", symbol="ALPHA_382USDT", limit="3"))["data"]
    assert depth["symbol"] == "ALPHA_382USDT"
    bids = [(D(p), D(q)) for p, q in depth["bids"]]
    asks = [(D(p), D(q)) for p, q in depth["asks"]]
    assert len(bids) == len(asks) == 3
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert bids[0][0] < asks[0][0]
    assert all(q > 0 and p * q <= D(3000) * 2 for p, q in bids + asks)  # AOP: 3000 a level
    assert len((await alice.get("depth", symbol="ALPHA_382USDT"))["data"]["bids"]) == 100
    refused = await alice.get("depth", symbol="ALPHA_382USDT", limit="0")
    assert refused["success"] is False and refused["code"] == "000002"
    unknown = await alice.get("depth", symbol="ALPHA_1USDT")
    assert unknown["success"] is False


async def test_the_calm_default_and_the_spread_override() -> None:
    async with SimHarness(price_interval=0) as calm, open_browser(calm, "alice") as alice:
        bid, ask = await best(alice)  # what every other test gets: one price
        assert bid == ask == D("48.02764722")
    async with SimHarness(price_interval=0, spread="0.001") as wide:
        state = (await wide.admin.state())["tokens"]
        for token in state.values():
            assert D(token["spread"]) == D("0.001")
            assert D(token["bid"]) < D(token["price"]) < D(token["ask"])
        async with open_browser(wide, "alice") as alice:
            bid, ask = await best(alice)
        assert abs((ask - bid) - D("48.02764722") * D("0.001")) <= KOGE_TICK


async def test_a_scenario_sets_each_tokens_spread(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        "tokens:\n"
        "  - {symbol: ZED, alpha_id: ALPHA_777, price: '2.5', tick_size: '0.0001',"
        " step_size: '0.1', spread: '0.01'}\n"
        "  - {symbol: NIL, alpha_id: ALPHA_778, price: '1', tick_size: '0.0001',"
        " step_size: '0.1'}\n"
    )
    async with (
        SimHarness(scenario=str(path), price_interval=0, spread=None) as h,
        open_browser(h, "alice") as alice,
    ):
        assert await best(alice, "ALPHA_777USDT") == (D("2.4875"), D("2.5125"))
        assert await best(alice, "ALPHA_778USDT") == (D(1), D(1))  # no spread given: none


async def test_klines_show_the_price_path_and_the_fills(harness, alice) -> None:
    now = harness.sim.clock.time()
    await harness.admin.advance_time(61 - now % 60)  # one second into a fresh minute
    for price in ("49", "47", "48"):
        await harness.admin.set_price("KOGE", D(price))
    async with alice.stream() as stream:
        await alice.post("oto", koge_oto(price="50", qty="0.2082", pending="46"))
        reports = await stream.reports(5)
    bought, sold = D(reports[2]["z"]), D(reports[4]["z"])
    last_trade = D(reports[4]["L"])  # the sell, at the bid below 48

    rows = (await alice.get("klines", symbol="ALPHA_22USDT", interval="1m", limit="2"))["data"]
    assert len(rows) == 2
    prev, last = rows
    assert int(last[0]) == int(prev[0]) + 60_000 and int(last[6]) == int(last[0]) + 59_999
    assert D(last[1]) == D(prev[4])  # opens where the previous minute closed
    assert D(last[2]) == D(49) and D(last[3]) == D(47) and D(last[4]) == last_trade
    assert D(last[5]) == bought + sold and last[8] == "2" and last[11] == 0

    agg = await alice.agg_klines("KOGE", interval="1m", limit="1")
    (row,) = agg["data"]["klineInfos"]
    assert [D(x) for x in row[1:6]] == [D(x) for x in last[1:6]]
    bad = await alice.get("klines", symbol="ALPHA_22USDT", interval="7m")
    assert bad["success"] is False and bad["code"] == "000002"
