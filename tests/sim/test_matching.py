"""Orders against the sim over plain HTTP and the user stream, as a browser would see them."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from tests.sim.conftest import koge_oto

D = Decimal
KOGE_PRICE = D("48.02764722")  # default universe price


def floor(d: Decimal, step: str) -> Decimal:
    return (d / D(step)).to_integral_value(ROUND_DOWN) * D(step)


async def test_oto_bodies_as_browsers_send_them_are_accepted(alice) -> None:
    numbers = koge_oto()
    strings = {
        **numbers,
        "workingPrice": "48.1",
        "workingQuantity": "0.2082",
        "pendingPrice": "47.5",
    }
    with_type = {**numbers, "pendingType": "LIMIT"}
    amount_as_number = {
        **numbers,
        "paymentDetails": [{"amount": 10.01442, "paymentWalletType": "CARD"}],
    }
    for body in (numbers, strings, with_type, amount_as_number):
        placed = await alice.post("oto", body)
        assert placed["success"] is True, placed
        ids = placed["data"]
        assert isinstance(ids["workingOrderId"], int)
        assert ids["pendingOrderId"] == ids["workingOrderId"] + 1


async def test_oto_round_trip_reports_fees_and_balances(harness, alice) -> None:
    async with alice.stream() as stream:
        placed = (await alice.post("oto", koge_oto(price="50", qty="0.2082", pending="47.5")))[
            "data"
        ]
        new_buy, pending, buy_filled, sell_new, sell_filled = await stream.reports(5)

    wid, pid = str(placed["workingOrderId"]), str(placed["pendingOrderId"])
    assert (new_buy["i"], new_buy["S"], new_buy["X"], new_buy["cp"]) == (
        wid,
        "BUY",
        "NEW",
        "OTO_WORKING",
    )
    assert (pending["i"], pending["S"], pending["X"], pending["q"]) == (pid, "SELL", "PENDING", "0")
    assert new_buy["il"] == pending["il"]

    # a crossing limit fills at the market price, not at its limit; fee in the token
    assert buy_filled["X"] == "FILLED" and buy_filled["x"] == "TRADE"
    assert D(buy_filled["L"]) == KOGE_PRICE
    quote = (D("0.2082") * KOGE_PRICE).quantize(D("0.00000001"), ROUND_DOWN)
    assert D(buy_filled["Z"]) == quote
    fee = D("0.00002082")
    assert (D(buy_filled["n"]), buy_filled["N"]) == (fee, "ALPHA_22")

    # the pending sell becomes NEW with filled - fee, floored to the lot step
    sell_qty = floor(D("0.2082") - fee, "0.0001")
    assert sell_new["i"] == pid and sell_new["X"] == "NEW" and D(sell_new["q"]) == sell_qty
    assert sell_filled["X"] == "FILLED" and D(sell_filled["z"]) == sell_qty
    sell_quote = (sell_qty * KOGE_PRICE).quantize(D("0.00000001"), ROUND_DOWN)
    sell_fee = (sell_quote * D("0.0001")).quantize(D("0.00000001"), ROUND_DOWN)
    assert (D(sell_filled["n"]), sell_filled["N"]) == (sell_fee, "USDT")

    acc = await harness.admin.account("alice")
    assert D(acc["balances"]["USDT"]["free"]) == D(10000) - quote + sell_quote - sell_fee
    assert D(acc["balances"]["USDT"]["locked"]) == 0
    assert D(acc["balances"]["ALPHA_22"]["free"]) == D("0.2082") - fee - sell_qty
    assert acc["oto_count"] == 1
    statuses = {o["order_id"]: [h["status"] for h in o["history"]] for o in acc["orders"]}
    assert statuses == {wid: ["NEW", "FILLED"], pid: ["PENDING", "NEW", "FILLED"]}

    trades = await alice.get("user_trades", orderId=wid, symbol="ALPHA_22USDT")
    assert [(t["side"], D(t["qty"]), t["commissionAsset"]) for t in trades["data"]] == [
        ("BUY", D("0.2082"), "ALPHA_22")
    ]
    hist = (await alice.get("history"))["data"]
    assert {(r["orderId"], r["status"], r["contingencyOrderPosition"]) for r in hist} == {
        (wid, "FILLED", "OTO_WORKING"),
        (pid, "FILLED", "OTO_PENDING"),
    }


async def test_pending_sell_quantity_respects_each_lot_step(harness, alice) -> None:
    async with alice.stream() as stream:
        # AOP: step 0.01, price ~0.0839
        body = {
            "baseAsset": "ALPHA_382",
            "quoteAsset": "USDT",
            "workingSide": "BUY",
            "workingPrice": "0.09",
            "workingQuantity": "333.33",
            "paymentDetails": [{"amount": "29.9997", "paymentWalletType": "CARD"}],
            "pendingPrice": "0.08",
            "pendingType": "LIMIT",
        }
        assert (await alice.post("oto", body))["success"]
        reports = await stream.reports(5)
        assert D(reports[3]["q"]) == floor(D("333.33") * D("0.9999"), "0.01") == D("333.29")
        # TINY: tick 1e-9, step 1
        body = {
            "baseAsset": "ALPHA_971",
            "quoteAsset": "USDT",
            "workingSide": "BUY",
            "workingPrice": "0.000006",
            "workingQuantity": "1700000",
            "paymentDetails": [{"amount": "10.2", "paymentWalletType": "CARD"}],
            "pendingPrice": "0.000005001",
        }
        assert (await alice.post("oto", body))["success"]
        reports = await stream.reports(5)
        assert reports[2]["n"] == "170.00000000" and reports[3]["q"] == "1699830.00000000"
        assert reports[2]["L"] == "0.000005854"  # 9-decimal prices survive


async def test_resting_order_fills_when_the_price_crosses(harness, alice) -> None:
    async with alice.stream() as stream:
        placed = (await alice.post("oto", koge_oto(price="40", qty="0.5", pending="39")))["data"]
        first = await stream.reports(2)
        assert [r["X"] for r in first] == ["NEW", "PENDING"]
        opened = (await alice.get("open_orders"))["data"]
        assert {r["orderId"] for r in opened} == {
            str(placed["workingOrderId"]),
            str(placed["pendingOrderId"]),
        }
        acc = await harness.admin.account("alice")
        assert D(acc["balances"]["USDT"]["locked"]) == D(20)
        await harness.admin.set_price("KOGE", D("39.5"))
        buy_filled, sell_new, sell_filled = await stream.reports(3)
    assert buy_filled["X"] == "FILLED" and D(buy_filled["L"]) == D("39.5")
    assert sell_new["X"] == "NEW" and sell_filled["X"] == "FILLED"
    assert D(sell_filled["L"]) == D("39.5")  # sell limit 39 < market: fills at market
    assert (await alice.get("open_orders"))["data"] == []


async def test_cancel_of_working_order_cancels_the_oto(harness, alice) -> None:
    async with alice.stream() as stream:
        placed = (await alice.post("oto", koge_oto(price="40", qty="0.5", pending="39")))["data"]
        await stream.reports(2)
        wid = str(placed["workingOrderId"])
        res = await alice.post("cancel", {"orderId": wid, "symbol": "ALPHA_22USDT"})
        assert res["success"] is True and res["data"] is None
        canceled = await stream.reports(2)
    assert [(r["i"], r["X"]) for r in canceled] == [
        (wid, "CANCELED"),
        (str(placed["pendingOrderId"]), "CANCELED"),
    ]
    acc = await harness.admin.account("alice")
    assert D(acc["balances"]["USDT"]["free"]) == D(10000)
    assert D(acc["balances"]["USDT"]["locked"]) == 0
    assert (await alice.get("open_orders"))["data"] == []
    again = await alice.post("cancel", {"orderId": wid, "symbol": "ALPHA_22USDT"})
    assert again["success"] is False
    unknown = await alice.post("cancel", {"orderId": "1", "symbol": "ALPHA_22USDT"})
    assert unknown["success"] is False and unknown["code"]


async def test_orders_violating_filters_or_balance_are_rejected(harness, alice) -> None:
    bad = {
        "tick": koge_oto(price="48.123456789"),
        "step": koge_oto(qty="0.20825"),
        "min notional": koge_oto(price="48", qty="0.002"),
        "max qty": koge_oto(price="1", qty="20000"),
        "balance": koge_oto(price="48", qty="300"),
        "pending tick": koge_oto(pending="47.123456789"),
        "payment amount": {
            **koge_oto(),
            "paymentDetails": [{"amount": "1", "paymentWalletType": "CARD"}],
        },
        "pending type": {**koge_oto(), "pendingType": "MARKET"},
        "symbol": {**koge_oto(), "baseAsset": "ALPHA_999999"},
    }
    real = {  # DESIGN 3: the codes and envelopes the real exchange answers with
        "tick": ("481002", "Unable to place order due to incorrect price or amount."),
        "step": ("481002", "Unable to place order due to incorrect price or amount."),
        "pending tick": ("481002", "Unable to place order due to incorrect price or amount."),
        "balance": ("481020", "余额不足，下单失败。"),
        "payment amount": (
            "000002",
            "price*quantity must be the same as sum(paymentDetail.amount)",
        ),
    }
    for what, body in bad.items():
        resp = await alice.raw("POST", "oto", body)
        res = await resp.json()
        assert resp.status == 200 and res["success"] is False, what
        assert res["code"] and res["code"] != "000000" and res["message"], what
        if what in real:
            assert (res["code"], res["message"]) == real[what], what
            assert set(res) == {"code", "message", "messageDetail", "data", "success"}
            detail = res["messageDetail"]
            assert (detail is None) if res["code"] != "481002" else isinstance(detail, dict)
    acc = await harness.admin.account("alice")
    assert acc["oto_count"] == 0 and acc["orders"] == []
    assert D(acc["balances"]["USDT"]["free"]) == D(10000)


async def test_limit_orders_buy_and_sell_leftovers(harness, alice) -> None:
    buy = {
        "baseAsset": "ALPHA_22",
        "quoteAsset": "USDT",
        "side": "BUY",
        "price": "49",
        "quantity": "1",
        "paymentDetails": [{"amount": "49", "paymentWalletType": "CARD"}],
        "orderType": "LIMIT",
    }
    async with alice.stream() as stream:
        oid = (await alice.post("limit", buy))["data"]
        assert isinstance(oid, str)
        new, filled = await stream.reports(2)
        assert (new["i"], new["X"], new["il"], new["cp"]) == (oid, "NEW", "-1", None)
        assert filled["X"] == "FILLED"
        have = D("1") - D("0.0001")
        sell = {
            **buy,
            "side": "SELL",
            "price": "47",
            "quantity": str(have),
            "paymentDetails": [{"amount": str(have), "paymentWalletType": "ALPHA"}],
        }
        sid = (await alice.post("limit", sell))["data"]
        new, filled = await stream.reports(2)
        assert filled["i"] == sid and filled["X"] == "FILLED" and filled["N"] == "USDT"
    too_much = {
        **sell,
        "quantity": "1",
        "paymentDetails": [{"amount": "1", "paymentWalletType": "ALPHA"}],
    }
    assert (await alice.post("limit", too_much))["success"] is False
    wallet = (await alice.get("wallet"))["data"]
    assert wallet["list"] == []  # nothing left over


async def test_fill_delay_leaves_the_order_open_until_it_fills(harness, alice) -> None:
    await harness.admin.set_config(fill_delay=0.05)
    async with alice.stream() as stream:
        placed = (await alice.post("oto", koge_oto()))["data"]
        opened = (await alice.get("open_orders", side="BUY"))["data"]
        assert [r["orderId"] for r in opened] == [str(placed["workingOrderId"])]
        reports = await stream.reports(5)
    assert [r["X"] for r in reports] == ["NEW", "PENDING", "FILLED", "NEW", "FILLED"]


async def test_accounts_are_isolated(harness, browser_for) -> None:
    a, b = browser_for("acct-a"), browser_for("acct-b")
    placed = (await a.post("oto", koge_oto(price="40", qty="0.5", pending="39")))["data"]
    res = await b.post(
        "cancel", {"orderId": str(placed["workingOrderId"]), "symbol": "ALPHA_22USDT"}
    )
    assert res["success"] is False
    assert (await b.get("open_orders"))["data"] == []
    assert len((await a.get("open_orders"))["data"]) == 2


async def test_order_history_filters_by_status_time_and_pages(harness, alice) -> None:
    for _ in range(3):
        placed = (await alice.post("oto", koge_oto(price="40", qty="0.5", pending="39")))["data"]
    await alice.post("cancel", {"orderId": str(placed["workingOrderId"]), "symbol": "ALPHA_22USDT"})
    canceled = await alice.get(
        "/bapi/defi/v1/private/alpha-trade/order/get-order-history-merge",
        orderStatus="CANCELED",
    )
    assert canceled["total"] == 2
    assert {r["orderId"] for r in canceled["data"]} == {
        str(placed["workingOrderId"]),
        str(placed["pendingOrderId"]),
    }
    paged = await alice.get(
        "/bapi/defi/v1/private/alpha-trade/order/get-order-history-merge", page="2", rows="4"
    )
    assert paged["total"] == 6 and len(paged["data"]) == 2
    future = harness.sim.clock.now_ms() + 60_000
    later = await alice.get(
        "/bapi/defi/v1/private/alpha-trade/order/get-order-history-merge", startTime=str(future)
    )
    assert later["total"] == 0 and later["data"] == []
