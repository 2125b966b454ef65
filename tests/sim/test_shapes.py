"""The sim must answer with the same keys as the real exchange, endpoint by endpoint.

Each response (and stream message) is compared with the matching file in the real samples:
envelope keys, the keys of every row, and of nested objects. A new key in a sample or a
renamed key in the sim fails here, so the sim cannot drift away from Binance.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from tests.samples import ASSET_BALANCE_KEYS, SAMPLES
from tests.sim.conftest import koge_oto


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def same_keys(real: dict, ours: dict, where: str) -> None:
    assert set(ours) == set(real), (
        f"{where}: missing {sorted(set(real) - set(ours))}, extra {sorted(set(ours) - set(real))}"
    )


def test_samples_are_the_real_ones() -> None:
    assert sample("oto_place_response.json")["data"]["workingOrderId"] == 176849327


async def test_public_endpoints_match_samples(alice) -> None:
    for name, file in (
        ("token_list", "token_list.json"),
        ("agg_ticker", "aggticker24_koge_aop.json"),
    ):
        real, ours = sample(file), await alice.get(name)
        same_keys(real, ours, name)
        for row in ours["data"]:
            same_keys(real["data"][0], row, f"{name} row")
        assert {r["symbol"] for r in ours["data"]} >= {"KOGE", "AOP"}
        assert all(
            isinstance(r["mulPoint"], int) and isinstance(r["price"], str) for r in ours["data"]
        )

    real, ours = sample("ticker.json"), await alice.get("ticker")
    same_keys(real, ours, "ticker")
    same_keys(real["data"], ours["data"], "ticker data")

    real, ours = sample("exchange_info.json"), await alice.get("exchange_info")
    same_keys(real, ours, "exchange info")
    same_keys(real["data"], ours["data"], "exchange info data")
    real_sym = real["data"]["symbols"][0]
    for sym in ours["data"]["symbols"]:
        same_keys(real_sym, sym, "symbol")
        assert [f["filterType"] for f in sym["filters"]] == [
            f["filterType"] for f in real_sym["filters"]
        ]
        for ours_f, real_f in zip(sym["filters"], real_sym["filters"], strict=True):
            same_keys(real_f, ours_f, f"filter {real_f['filterType']}")
    koge = next(s for s in ours["data"]["symbols"] if s["symbol"] == "ALPHA_22USDT")
    assert koge["filters"][:2] == real_sym["filters"][:2]  # price and lot filters as captured


async def test_private_reads_match_samples(alice) -> None:
    placed = await alice.post("oto", koge_oto())
    real = sample("oto_place_response.json")
    same_keys(real, placed, "oto place")
    same_keys(real["data"], placed["data"], "oto place data")
    assert isinstance(placed["data"]["workingOrderId"], int)

    vol = await alice.get("user_volume")
    real = sample("user_volume.json")
    same_keys(real, vol, "user volume")
    same_keys(real["data"], vol["data"], "user volume data")
    same_keys(
        real["data"]["tradeVolumeInfoList"][0], vol["data"]["tradeVolumeInfoList"][0], "volume row"
    )
    assert isinstance(vol["data"]["totalVolume"], float)

    wallet = await alice.get("wallet")
    real = sample("wallet_alpha.json")
    same_keys(real, wallet, "wallet")
    same_keys(real["data"], wallet["data"], "wallet data")
    same_keys(real["data"]["list"][0], wallet["data"]["list"][0], "wallet row")

    hist = await alice.get("history")
    real = sample("order_history_merge.json")
    same_keys(real, hist, "history")
    union = set().union(*(set(r) for r in real["data"]))
    for row in hist["data"]:
        assert set(row) == union, f"history row keys {sorted(set(row) ^ union)}"

    trades = await alice.get(
        "user_trades", orderId=str(placed["data"]["workingOrderId"]), symbol="ALPHA_22USDT"
    )
    real = sample("user_trades.json")
    same_keys(real, trades, "user trades")
    same_keys(real["data"][0], trades["data"][0], "user trade row")

    key = await alice.post("listen_key")
    same_keys(sample("listen_key.json"), key, "listen key")
    assert isinstance(key["data"], str) and len(key["data"]) == 32

    opened = await alice.get("open_orders", side="")
    assert set(sample("open_orders_empty.json")) <= set(opened)


async def test_order_write_endpoints_match_samples(harness, alice) -> None:
    body = sample("limit_order_place_request_buy.json")  # ALPHA_971, the 1e-9 tick token
    # our ALPHA_971-like token has a lot step of 1 (the capture's was 0.1)
    body["quantity"] = 1791151
    body["paymentDetails"][0]["amount"] = "9.99999603"
    placed = await alice.post("limit", body)
    real = sample("limit_order_place_response.json")
    same_keys(real, placed, "limit place")
    assert placed["success"] is True and isinstance(placed["data"], str)

    # the captured sell (1790972.6) is not on our lot step of 1; sell a whole quantity
    sell = sample("limit_order_place_request_sell.json")
    sell["quantity"] = 1000
    sell["paymentDetails"][0]["amount"] = 1000
    sell["price"] = 0.1  # far above the market: it rests and can be canceled
    await harness.admin.set_balance("alice", "TINY", Decimal(5000))
    placed = await alice.post("limit", sell)
    assert placed["success"] is True, placed
    cancel = await alice.post("cancel", {"orderId": placed["data"], "symbol": "ALPHA_971USDT"})
    same_keys(sample("cancel_response.json"), cancel, "cancel")
    assert cancel == sample("cancel_response.json")


async def test_stream_messages_match_the_real_oto_sequence(alice) -> None:
    real = sample("execution_report_oto_sequence.json")
    async with alice.stream() as stream:
        same_keys(sample("ws_user_subscribe_ack.json"), stream.ack, "subscribe ack")
        assert stream.ack == {"result": None, "id": 2}
        await alice.post("oto", koge_oto())
        msgs = [await stream.next() for _ in range(5)]
    # the real sequence has a partial sell fill in the middle; ours fills at once
    real_no_partial = [real[i] for i in (0, 1, 2, 3, 5)]
    for ours, theirs in zip(msgs, real_no_partial, strict=True):
        same_keys(theirs, ours, "stream message")
        assert ours["stream"] == f"alpha@{stream.key}"
        assert list(ours["data"]) == list(theirs["data"]), "key order differs"
        for k in ("x", "X", "S", "cp", "ct", "e", "o", "f"):
            assert ours["data"][k] == theirs["data"][k], k
        assert {k: type(v) for k, v in ours["data"].items() if v is not None} == {
            k: type(v) for k, v in theirs["data"].items()
        }


def same_row_types(real: list, ours: list, where: str) -> None:
    assert [type(x) for x in ours] == [type(x) for x in real], where


async def test_market_data_endpoints_match_samples(alice) -> None:
    depth = await alice.get("depth", symbol="ALPHA_971USDT", limit="3")
    real = sample("full_depth.json")
    assert set(real) <= set(depth) and depth["success"] is True  # the capture kept only data
    same_keys(real["data"], depth["data"], "full depth data")
    for side in ("bids", "asks"):
        for level in depth["data"][side]:
            same_row_types(real["data"][side][0], level, f"depth {side} level")
    assert len(depth["data"]["bids"][0][0]) == len(real["data"]["bids"][0][0])  # 9 decimals

    klines = await alice.get("klines", symbol="ALPHA_22USDT", interval="1h", limit="2")
    real = sample("klines.json")
    same_keys(real, klines, "klines")
    assert klines["data"]
    for row in klines["data"]:
        same_row_types(real["data"][0], row, "kline row")

    agg = await alice.agg_klines("KOGE", interval="1m", limit="5")
    same_keys(sample("klines.json"), agg, "agg klines")  # the usual envelope
    assert set(agg["data"]) == {"klineInfos"}
    for row in agg["data"]["klineInfos"]:
        same_row_types(sample("agg_klines_row.json"), row, "agg kline row")


async def test_user_score_matches_the_sample(harness, alice) -> None:
    await harness.admin.set_volume("alice", "KOGE", Decimal("131874.259612"))
    await harness.admin.advance_time(86_400)
    score = await alice.get("user_score")
    real = sample("user_score.json")
    same_keys(real, score, "user score")
    same_keys(real["data"], score["data"], "user score data")
    (row,) = score["data"]["list"]
    same_keys(real["data"]["list"][0], row, "user score day")
    assert {k: type(v) for k, v in row.items()} == {
        k: type(v) for k, v in real["data"]["list"][0].items()
    }
    for key in ("startDatetime", "endDatetime"):
        assert isinstance(score["data"][key], int)
    assert score["data"]["userSpendList"] == []  # no airdrop claims in the sim


async def test_asset_balances_have_the_documented_keys(harness, alice) -> None:
    await harness.admin.set_balance("alice", "AOP", Decimal(100))
    reply = await alice.get("assets", needAlphaAsset="1", quoteAsset="USDT")
    same_keys(sample("user_score.json"), reply, "asset balances")  # the usual envelope
    usdt, aop = reply["data"]
    assert set(usdt) == set(aop) == ASSET_BALANCE_KEYS
    assert (usdt["asset"], usdt["isCexAsset"], usdt["amount"]) == ("USDT", True, "10000.00000000")
    assert (aop["asset"], aop["isCexAsset"], aop["coinBusinessType"]) == ("AOP", False, "ALPHA")
    without = await alice.get("assets", quoteAsset="USDT")
    assert [r["asset"] for r in without["data"]] == ["USDT"]
