"""today/user-volume: BUY quote x mulPoint per UTC day, with lag, jitter and other rules."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

D = Decimal
AOP_PRICE = D("0.08385903")


def aop_oto(qty: str = "333.33") -> dict:
    amount = (D("0.09") * D(qty)).quantize(D("0.00000001"), ROUND_DOWN)
    return {
        "baseAsset": "ALPHA_382",
        "quoteAsset": "USDT",
        "workingSide": "BUY",
        "workingPrice": "0.09",
        "workingQuantity": qty,
        "paymentDetails": [{"amount": str(amount), "paymentWalletType": "CARD"}],
        "pendingPrice": "0.08",
    }


async def round_trip(alice) -> tuple[Decimal, Decimal]:
    """One AOP OTO filled both ways; returns (buy quote, sell quote)."""
    async with alice.stream() as stream:
        assert (await alice.post("oto", aop_oto()))["success"]
        reports = await stream.reports(5)
    return D(reports[2]["Z"]), D(reports[4]["Z"])


async def volume_of(alice, token: str = "AOP") -> Decimal | None:
    data = (await alice.get("user_volume"))["data"]
    rows = {r["tokenName"]: D(repr(r["volume"])) for r in data["tradeVolumeInfoList"]}
    return rows.get(token)


async def test_volume_is_buy_quote_times_mulpoint_after_the_lag(harness, alice) -> None:
    await harness.admin.set_config(volume_lag=30)
    buy, _sell = await round_trip(alice)
    assert buy == (D("333.33") * AOP_PRICE).quantize(D("0.00000001"), ROUND_DOWN)
    assert await volume_of(alice) is None  # not shown yet
    await harness.admin.advance_time(29)
    assert await volume_of(alice) is None
    await harness.admin.advance_time(2)
    assert await volume_of(alice) == buy * 4  # AOP mulPoint 4
    data = (await alice.get("user_volume"))["data"]
    assert D(repr(data["totalVolume"])) == buy * 4


async def test_counting_rules_can_be_switched(harness, alice) -> None:
    buy, sell = await round_trip(alice)
    assert await volume_of(alice) == buy * 4
    await harness.admin.set_config(counting="buy_nomul")
    assert await volume_of(alice) == buy
    await harness.admin.set_config(counting="both_mul")
    assert await volume_of(alice) == (buy + sell) * 4


async def test_mulpoint_change_applies_to_later_fills(harness, alice) -> None:
    buy1, _ = await round_trip(alice)
    await harness.admin.set_token("AOP", mul_point=1)
    tokens = (await alice.get("token_list"))["data"]
    assert next(t for t in tokens if t["symbol"] == "AOP")["mulPoint"] == 1
    buy2, _ = await round_trip(alice)
    assert await volume_of(alice) == buy1 * 4 + buy2


async def test_seeded_volume_and_day_rollover(harness, alice) -> None:
    await harness.admin.set_volume("alice", "KOGE", D("1024"))
    assert await volume_of(alice, "KOGE") == D(1024)
    await harness.admin.advance_time(86_400)  # the next UTC day starts from zero
    data = (await alice.get("user_volume"))["data"]
    assert data == {"totalVolume": 0, "tradeVolumeInfoList": []}


async def test_jitter_makes_reads_disagree_within_bounds(harness, alice) -> None:
    buy, _ = await round_trip(alice)
    await harness.admin.set_config(volume_jitter=0.01)
    reads = {await volume_of(alice) for _ in range(5)}
    assert len(reads) > 1
    exact = buy * 4
    assert all(abs(v - exact) <= exact * D("0.0100001") for v in reads)


async def test_seeding_one_token_keeps_the_lag_of_others(harness, alice) -> None:
    await harness.admin.set_config(volume_lag=30)
    buy, _ = await round_trip(alice)
    await harness.admin.set_volume("alice", "KOGE", D("100"))
    assert await volume_of(alice, "KOGE") == D(100)
    assert await volume_of(alice) is None  # the AOP fill is still inside the lag
    await harness.admin.advance_time(31)
    assert await volume_of(alice) == buy * 4
