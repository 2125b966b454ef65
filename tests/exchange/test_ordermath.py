"""Order maths: rounding direction, filters named on violation, exact JSON bodies."""

from __future__ import annotations

import json
from decimal import Decimal as D

import msgspec
import pytest

from exchange.errors import OrderRejected
from exchange.models import SymbolFilters
from exchange.ordermath import (
    OrderMathError,
    floor_qty,
    fmt,
    payment_amount,
    plan_limit,
    plan_oto,
    round_price,
)
from tests.samples import SAMPLES

KOGE = SymbolFilters(
    symbol="ALPHA_22USDT",
    base_asset="ALPHA_22",
    tick_size=D("0.00000001"),
    step_size=D("0.0001"),
    min_qty=D("0.0001"),
    max_qty=D("19909"),
    min_notional=D("0.1"),
    max_open_orders=200,
)
TINY = SymbolFilters(  # 1e-9 tick, lot step 1
    symbol="ALPHA_971USDT",
    base_asset="ALPHA_971",
    tick_size=D("0.000000001"),
    step_size=D("1"),
    min_qty=D("1"),
    max_qty=D("9000000000"),
    min_notional=D("0.1"),
)
BARE = SymbolFilters(symbol="ALPHA_1USDT", base_asset="ALPHA_1")  # every filter missing


def test_buy_rounds_up_sell_rounds_down_to_tick():
    assert round_price(D("48.017065421"), D("0.00000001"), "BUY") == D("48.01706543")
    assert round_price(D("48.017065429"), D("0.00000001"), "SELL") == D("48.01706542")
    assert round_price(D("0.0000055831"), D("1e-9"), "BUY") == D("0.000005584")
    assert round_price(D("0.0000055839"), D("1e-9"), "SELL") == D("0.000005583")
    # already on the grid: unchanged
    assert round_price(D("0.000005583"), D("1e-9"), "BUY") == D("0.000005583")


def test_qty_floors_to_step():
    assert floor_qty(D("0.20829"), D("0.0001")) == D("0.2082")
    assert floor_qty(D("1791151.99"), D("1")) == D("1791151")
    assert floor_qty(D("869.479"), D("0.01")) == D("869.47")


def test_payment_amount_truncates_to_8_decimals():
    assert payment_amount(D("48.01706542"), D("0.2082")) == D("9.99715302")  # sample
    assert payment_amount(D("0.000005583"), D("1791151.7")) == D("9.99999994")  # sample
    assert payment_amount(D("0.123456789"), D("1")) == D("0.12345678")


def test_fmt_never_uses_exponent():
    assert fmt(D("1E-9")) == "0.000000001"
    assert fmt(D("1E+3")) == "1000"
    assert fmt(D("0.00010000")) == "0.0001"
    assert fmt(D("0E-8")) == "0"
    assert "E" not in fmt(D("123456789012345678.000000001"))


def test_plan_oto_reproduces_the_browser_body():
    req = plan_oto(KOGE, D("48.017065415"), D("0.001"), D("10"))
    body = json.loads(req.to_body())
    sample = json.loads((SAMPLES / "oto_place_request.json").read_text())
    assert {k: v for k, v in body.items() if k != "pendingType"} == sample
    assert body["pendingType"] == "LIMIT"
    # numbers are exact JSON number literals, amount a string
    raw = req.to_body().decode()
    assert '"workingPrice":48.01706542' in raw and '"amount":"9.99715302"' in raw


def test_plan_oto_tiny_tick_and_whole_lots():
    req = plan_oto(TINY, D("0.0000055831"), D("0.0000054999"), D("10"))
    assert req.working_price == D("0.000005584")
    assert req.pending_price == D("0.000005499")
    assert req.working_quantity == D("1790830")  # 10 / 0.000005584 floored to whole lots
    assert req.payment_amount <= D("10")
    raw = req.to_body().decode()
    assert "E" not in raw.replace("USDT", "").replace("LIMIT", "").replace("SELL", "")
    assert '"workingPrice":0.000005584' in raw


def test_plan_oto_names_the_violated_filter():
    with pytest.raises(OrderMathError) as e:
        plan_oto(KOGE, D("48"), D("47"), D("0.05"))  # 0.001 KOGE = 0.048 USDT < 0.1
    assert e.value.filter == "MIN_NOTIONAL" and "MIN_NOTIONAL" in str(e.value)
    assert isinstance(e.value, OrderRejected) and isinstance(e.value, ValueError)
    with pytest.raises(OrderMathError) as e:
        plan_oto(KOGE, D("0.0001"), D("0.0001"), D("10"))  # 100000 > maxQty
    assert e.value.filter == "LOT_SIZE.maxQty"
    with pytest.raises(OrderMathError) as e:
        plan_oto(TINY, D("20"), D("19"), D("10"))  # less than one whole lot
    assert e.value.filter == "LOT_SIZE.minQty"


def test_missing_filters_are_tolerated():
    req = plan_oto(BARE, D("1.234567891"), D("1.1"), D("10"))
    assert req.working_price == D("1.23456790")  # 8 decimals when no tick
    assert req.working_quantity == floor_qty(D("10") / D("1.2345679"), D("1e-8"))
    raw = msgspec.json.decode(
        b'{"symbol":"ALPHA_5USDT","baseAsset":"ALPHA_5","quantityPrecision":2,'
        b'"filters":[{"filterType":"LOT_SIZE","stepSize":null,"minQty":null}]}',
        type=__import__("exchange.models", fromlist=["RawSymbol"]).RawSymbol,
    )
    f = SymbolFilters.from_raw(raw)
    assert plan_oto(f, D("3"), D("2"), D("10")).working_quantity == D("3.33")


def test_plan_limit_sell_matches_browser_body():
    req = plan_limit(TINY, "SELL", D("0.0000056379"), D("1790972.6"))
    body = json.loads(req.to_body())
    # lot step 1 floors the quantity; a SELL pays with the token, amount = quantity (number)
    assert body["quantity"] == 1790972 and body["price"] == 0.000005637
    assert body["paymentDetails"] == [{"amount": 1790972, "paymentWalletType": "ALPHA"}]
    assert body["side"] == "SELL" and body["orderType"] == "LIMIT"
    sample = json.loads((SAMPLES / "limit_order_place_request_sell.json").read_text())
    assert set(body) == set(sample)


def test_plan_limit_buy_matches_browser_body():
    f = SymbolFilters(
        symbol="ALPHA_971USDT", base_asset="ALPHA_971", tick_size=D("1e-9"), step_size=D("0.1")
    )
    req = plan_limit(f, "BUY", D("0.000005583"), D("1791151.7"))
    assert json.loads(req.to_body()) == json.loads(
        (SAMPLES / "limit_order_place_request_buy.json").read_text()
    )


def test_plan_limit_refuses_dust():
    with pytest.raises(OrderMathError) as e:
        plan_limit(KOGE, "SELL", D("48"), D("0.0019"))  # 0.0912 USDT
    assert e.value.filter == "MIN_NOTIONAL"
