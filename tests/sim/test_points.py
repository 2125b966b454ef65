"""The programme's rules as the sim applies them: mulPoint from chain and listing day
(changing at the UTC midnight after day 30), the default universe's mix, and user-score
(volume points only on days whose 23:59:59 balance was at least 100 USDT)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from exchange.sim.testing import SimHarness
from tests.sim.conftest import advance_to_midnight, koge_oto, open_browser, oto_body

D = Decimal
GOATED_OTO = oto_body("ALPHA_395", price="0.1", qty="100", pending="0.09")  # 30th day today


def utc_day(ms: float):
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date()


async def tokens_of(browser) -> dict[str, dict]:
    return {t["symbol"]: t for t in (await browser.get("token_list"))["data"]}


async def round_trip(browser, body: dict) -> Decimal:
    """One OTO filled both ways; the buy's quote."""
    async with browser.stream() as stream:
        assert (await browser.post("oto", body))["success"]
        reports = await stream.reports(5)
    assert reports[4]["X"] == "FILLED"
    return D(reports[2]["Z"])


async def volume_today(browser, token: str) -> Decimal:
    rows = (await browser.get("user_volume"))["data"]["tradeVolumeInfoList"]
    return sum((D(repr(r["volume"])) for r in rows if r["tokenName"] == token), D(0))


async def test_mul_point_drops_from_4_to_1_at_the_midnight_after_day_30(harness, alice) -> None:
    goated = (await tokens_of(alice))["GOATED"]
    today = harness.sim.clock.utc_day()
    assert (goated["mulPoint"], goated["chainName"]) == (4, "BSC")
    assert today - utc_day(goated["listingTime"]) == timedelta(days=29)  # its 30th day

    await advance_to_midnight(harness, -5.0)
    assert (await tokens_of(alice))["GOATED"]["mulPoint"] == 4
    buy = await round_trip(alice, GOATED_OTO)
    assert await volume_today(alice, "GOATED") == buy * 4

    await advance_to_midnight(harness, 1.0)
    after = await tokens_of(alice)
    assert after["GOATED"]["mulPoint"] == 1
    assert {s: after[s]["mulPoint"] for s in ("KOGE", "AOP", "TINY")} == {
        "KOGE": 1,
        "AOP": 4,
        "TINY": 2,
    }
    buy = await round_trip(alice, GOATED_OTO)
    assert await volume_today(alice, "GOATED") == buy  # counted x1 from the new day


async def test_a_pinned_mul_point_wins_until_unpinned(harness, alice) -> None:
    view = await harness.admin.set_token("GOATED", mul_point=2)
    assert (view["mul_point"], view["mul_point_pinned"]) == (2, True)
    assert (await tokens_of(alice))["GOATED"]["mulPoint"] == 2
    await harness.admin.set_token("GOATED", mul_point=None)
    assert (await tokens_of(alice))["GOATED"]["mulPoint"] == 4


async def test_the_default_universe_has_the_mix_the_planner_needs() -> None:
    # as `alphavol sim` serves it: each token's own spread and volatility
    async with SimHarness(price_interval=0, spread=None, volatility=None) as h:
        async with open_browser(h, "alice") as alice:
            tokens = await tokens_of(alice)
        book = (await h.admin.state())["tokens"]
        today = h.sim.clock.utc_day()
    assert len(tokens) >= 8
    assert len({t["alphaId"] for t in tokens.values()}) == len(tokens)
    assert all(t["alphaId"].startswith("ALPHA_") for t in tokens.values())

    def age(symbol: str) -> int:
        return (today - utc_day(tokens[symbol]["listingTime"])).days

    by_mul = {m: {s for s, t in tokens.items() if t["mulPoint"] == m} for m in (1, 2, 4)}
    assert len(by_mul[4]) >= 3 and len(by_mul[2]) >= 2 and len(by_mul[1]) >= 2
    assert any(age(s) == 29 for s in by_mul[4])  # drops to x1 at the next midnight
    assert any(age(s) <= 20 for s in by_mul[4])  # fresh, weeks of x4 left
    assert all(tokens[s]["chainName"] != "BSC" for s in by_mul[2])  # x2 only off BSC
    assert {t["chainName"] for t in tokens.values()} >= {"BSC", "Solana", "Sui"}
    assert (tokens["KOGE"]["mulPoint"], tokens["AOP"]["mulPoint"]) == (1, 4)
    spreads = {D(v["spread"]) for v in book.values()}
    vols = {D(v["volatility"]) for v in book.values()}
    assert len(spreads) >= 5 and len(vols) >= 5 and min(spreads) > 0
    assert all(D(v["bid"]) < D(v["price"]) < D(v["ask"]) for v in book.values())


def floor_log2(volume: Decimal) -> int:
    return math.floor(math.log2(volume)) if volume >= 2 else 0


def tier(balance: Decimal) -> int:
    return sum(1 for floor in (100, 1_000, 10_000, 100_000) if balance >= floor)


async def test_user_score_follows_volumes_and_the_235959_balance(harness, browser_for) -> None:
    rich, poor, topped, drained = (browser_for(n) for n in ("rich", "poor", "topped", "drained"))
    for name in ("poor", "topped"):
        await harness.admin.set_balance(name, "USDT", D(60))
    volumes = {}  # KOGE counts x1
    for name, b in (("rich", rich), ("poor", poor), ("topped", topped), ("drained", drained)):
        volumes[name] = await round_trip(b, koge_oto())
    volumes["rich"] += 4 * await round_trip(rich, GOATED_OTO)  # x4 on its 30th day
    await harness.admin.set_balance("topped", "USDT", D(500))  # before the day ends: counts
    await harness.admin.set_balance("drained", "USDT", D(50))  # withdrawn before midnight
    await advance_to_midnight(harness, -5.0)
    day = harness.sim.clock.utc_day().isoformat()
    ends = {n: D((await harness.admin.account(n))["eligible_balance"]) for n in volumes}
    await advance_to_midnight(harness, 5.0)
    await harness.admin.set_balance("drained", "USDT", D(10_000))  # too late for yesterday

    for name, b in (("rich", rich), ("poor", poor), ("topped", topped), ("drained", drained)):
        score = (await b.get("user_score"))["data"]
        (row,) = score["list"]
        assert row["date"] == day
        assert D(row["balanceSnapshot"]) == ends[name]
        assert D(row["alphaVolume"]) == volumes[name].quantize(D("0.00000001"), ROUND_DOWN)
        counted = ends[name] >= 100
        assert row["alphaVolumeScore"] == str(floor_log2(volumes[name]) if counted else 0)
        assert row["balanceScore"] == str(tier(ends[name]))
        assert row["totalScore"] == str(int(row["balanceScore"]) + int(row["alphaVolumeScore"]))
        assert score["sumScore"] == row["totalScore"]
    poor_row = (await poor.get("user_score"))["data"]["list"][0]
    assert D(poor_row["alphaVolume"]) >= 8 and poor_row["alphaVolumeScore"] == "0"
    drained_row = (await drained.get("user_score"))["data"]["list"][0]
    assert drained_row["alphaVolumeScore"] == "0"
    topped_row = (await topped.get("user_score"))["data"]["list"][0]
    assert int(topped_row["alphaVolumeScore"]) == 3 and topped_row["balanceScore"] == "1"


async def test_alpha_tokens_count_toward_the_balance_at_their_bid() -> None:
    async with SimHarness(price_interval=0, spread=None) as h, open_browser(h, "ann") as ann:
        await h.admin.set_balance("ann", "USDT", D(50))
        await h.admin.set_balance("ann", "AOP", D(1000))  # ~84 USDT at the mid
        await h.admin.set_volume("ann", "AOP", D(64))
        depth = (await ann.get("depth", symbol="ALPHA_382USDT", limit="1"))["data"]
        bid = D(depth["bids"][0][0])
        assert bid < D(depth["asks"][0][0])
        await advance_to_midnight(h, 1.0)
        (row,) = (await ann.get("user_score"))["data"]["list"]
    assert D(row["balanceSnapshot"]) == 50 + 1000 * bid
    assert (row["balanceScore"], row["alphaVolumeScore"]) == ("1", "6")
