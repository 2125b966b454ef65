"""The client and the user stream against the simulated exchange, over real sockets."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import msgspec
import pytest

from exchange.client import AlphaClient
from exchange.errors import (
    InsufficientBalance,
    OrderNotOpen,
    OrderParametersRejected,
    OutcomeUnknown,
    RateLimited,
    RiskChallenge,
    SessionExpired,
)
from exchange.models import ExecutionReport, LimitOrderRequest
from exchange.ordermath import payment_amount, plan_limit, plan_oto
from exchange.sim.testing import SimHarness
from exchange.stream import StreamConnected, StreamDisconnected, UserStream
from tests.exchange.test_stream import Collector, count

ACCOUNT = "alice"


@pytest.fixture
async def sim():
    async with SimHarness(seed=1, fill_delay=0, volume_lag=60) as h:
        yield h


@pytest.fixture
async def alice(sim):
    c = AlphaClient(
        base_url=sim.base_url,
        credentials=sim.credentials(ACCOUNT),
        request_timeout=2.0,
        retry_base_delay=0,
        retry_max_delay=0,
    )
    yield c
    await c.close()


@pytest.fixture
async def stream(sim, alice):
    s = UserStream(
        alice,
        ws_url=sim.ws_url,
        ping_interval=0.2,
        dead_after=3,
        initial_backoff=0.01,
        max_backoff=0.05,
        stable_after=0,
    )
    col = Collector()
    task = asyncio.create_task(s.run(col))
    await col.wait_for(count(StreamConnected, 1))
    yield s, col
    await s.close()
    await asyncio.wait_for(task, 5)


def reports(col: Collector, order_id: str, status: str | None = None) -> list[ExecutionReport]:
    return [
        e
        for e in col.of(ExecutionReport)
        if e.order_id == order_id and (status is None or e.status == status)
    ]


def has_report(order_id: str, status: str):
    return lambda evs: any(
        isinstance(e, ExecutionReport) and e.order_id == order_id and e.status == status
        for e in evs
    )


async def oto_for(
    alice: AlphaClient, symbol: str, usdt: str = "10", buy_mul="1.01", sell_mul="0.99"
):
    info = await alice.exchange_info()
    token = await alice.token(symbol)
    price = (await alice.ticker(token.pair)).last_price
    return token, plan_oto(
        info.get(token.pair), price * Decimal(buy_mul), price * Decimal(sell_mul), Decimal(usdt)
    )


async def test_oto_round_trip_reports_and_volume_after_lag(sim, alice, stream):
    _, col = stream
    token, req = await oto_for(alice, "AOP")
    assert token.mul_point == Decimal(4)
    placed = await alice.place_oto(req)
    w, p = placed.working_order_id, placed.pending_order_id
    assert int(p) == int(w) + 1
    await col.wait_for(has_report(p, "FILLED"))

    assert reports(col, w, "NEW")[0].side == "BUY"
    pending = reports(col, p, "PENDING")[0]
    assert pending.side == "SELL" and pending.qty == 0
    assert pending.contingency_position == "OTO_PENDING" and pending.order_list_id
    buy = reports(col, w, "FILLED")[0]
    assert buy.cum_qty == req.working_quantity
    sell_new = reports(col, p, "NEW")[0]
    # the sell quantity is what the buy got minus its fee (in the token), floored to the step
    assert sell_new.qty == ((buy.cum_qty - buy.fee) / Decimal("0.01")).to_integral_value(
        rounding="ROUND_FLOOR"
    ) * Decimal("0.01")

    assert (await alice.user_volume()).volume_of("AOP") == 0  # not yet: the volume lags
    await sim.admin.advance_time(61)
    vol = await alice.user_volume()
    assert vol.volume_of("AOP") == buy.cum_quote * 4

    assert await alice.open_orders() == []
    now = int(sim.sim.clock.time() * 1000)
    hist = await alice.order_history(start_ms=now - 3_600_000, end_ms=now)
    legs = {h.order_id: h for h in hist}
    assert legs[w].contingency_position == "OTO_WORKING" and legs[w].status == "FILLED"
    assert legs[p].contingency_position == "OTO_PENDING" and legs[p].status == "FILLED"
    trades = await alice.user_trades(w, token.pair)
    assert sum(t.qty for t in trades) == buy.cum_qty
    assert all(t.side == "BUY" for t in trades)
    acct = await sim.admin.account(ACCOUNT)
    assert acct["oto_count"] == 1


async def test_cancel_open_orders_and_cancel_again(sim, alice, stream):
    _, col = stream
    await sim.admin.set_faults(never_fill=True)
    token, req = await oto_for(alice, "KOGE")
    placed = await alice.place_oto(req)
    await col.wait_for(has_report(placed.pending_order_id, "PENDING"))
    open_ids = {o.order_id for o in await alice.open_orders()}
    assert placed.working_order_id in open_ids
    await alice.cancel(placed.working_order_id, token.pair)
    await col.wait_for(has_report(placed.working_order_id, "CANCELED"))
    await col.wait_for(has_report(placed.pending_order_id, "CANCELED"))
    assert await alice.open_orders() == []
    with pytest.raises(OrderNotOpen):
        await alice.cancel(placed.working_order_id, token.pair)


async def test_limit_orders_buy_then_sell(sim, alice, stream):
    _, col = stream
    info = await alice.exchange_info()
    tiny = await alice.token("TINY")
    filters = info.get(tiny.pair)
    price = (await alice.ticker(tiny.pair)).last_price
    qty = (Decimal("10") / price).to_integral_value(rounding="ROUND_FLOOR")
    buy_id = await alice.place_limit(plan_limit(filters, "BUY", price * Decimal("1.01"), qty))
    await col.wait_for(has_report(buy_id, "FILLED"))
    got = reports(col, buy_id, "FILLED")[0]
    held = next(w for w in await alice.wallet() if w.asset == tiny.alpha_id)
    assert held.free == got.cum_qty - got.fee
    sell_id = await alice.place_limit(
        plan_limit(filters, "SELL", price * Decimal("0.99"), held.free)
    )
    await col.wait_for(has_report(sell_id, "FILLED"))
    assert reports(col, sell_id, "FILLED")[0].side == "SELL"


async def test_insufficient_balance_is_the_real_481020_for_buy_and_sell(sim, alice):
    await sim.admin.set_balance(ACCOUNT, "USDT", Decimal("5"))
    token, req = await oto_for(alice, "KOGE")
    with pytest.raises(InsufficientBalance) as e:
        await alice.place_oto(req)  # 10 USDT wanted, 5 there
    assert (e.value.code, e.value.message) == ("481020", "余额不足，下单失败。")
    filters = (await alice.exchange_info()).get(token.pair)
    sell = plan_limit(filters, "SELL", req.working_price, Decimal("1"))  # holds no KOGE
    with pytest.raises(InsufficientBalance) as e:
        await alice.place_limit(sell)
    assert e.value.code == "481020"
    acc = await sim.admin.account(ACCOUNT)
    assert acc["orders"] == [] and Decimal(acc["balances"]["USDT"]["free"]) == 5


async def test_price_and_amount_refusals_are_the_real_codes_and_messages(sim, alice):
    """DESIGN 3: 481002 for a price finer than the tick (and a quantity off the lot step),
    000002 for a payment amount that is not price x quantity truncated to 8 decimals,
    481013 for a SELL under the 0.1 USDT minimum. Each is OrderParametersRejected."""
    token, req = await oto_for(alice, "KOGE")
    tick = Decimal("0.000000001")  # KOGE's tick is 1e-8: a float artefact is finer
    off_tick = msgspec.structs.replace(
        req,
        working_price=req.working_price + tick,
        payment_amount=payment_amount(req.working_price + tick, req.working_quantity),
    )
    off_step = msgspec.structs.replace(
        req,
        working_quantity=req.working_quantity + Decimal("0.00001"),
        payment_amount=payment_amount(req.working_price, req.working_quantity + Decimal("0.00001")),
    )
    wrong_amount = msgspec.structs.replace(
        req, payment_amount=req.payment_amount + Decimal("0.00000001")
    )
    expected = [
        (off_tick, "481002", "Unable to place order due to incorrect price or amount."),
        (off_step, "481002", "Unable to place order due to incorrect price or amount."),
        (wrong_amount, "000002", "price*quantity must be the same as sum(paymentDetail.amount)"),
    ]
    for bad, code, message in expected:
        with pytest.raises(OrderParametersRejected) as e:
            await alice.place_oto(bad)
        assert (e.value.code, e.value.message, e.value.http_status) == (code, message, 200)
    await sim.admin.set_balance(ACCOUNT, "KOGE", Decimal("1"))
    dust = LimitOrderRequest(  # about 0.05 USDT: our own maths would refuse to send it
        symbol=token.pair,
        base_asset=token.alpha_id,
        quote_asset="USDT",
        side="SELL",
        price=req.working_price,
        quantity=Decimal("0.001"),
        payment_amount=Decimal("0.001"),
    )
    with pytest.raises(OrderParametersRejected) as e:
        await alice.place_limit(dust)
    assert e.value.code == "481013" and "minimum" in e.value.message
    assert (await sim.admin.account(ACCOUNT))["orders"] == []


async def test_a_risk_challenge_on_an_accepted_oto_hands_over_its_ids(sim, alice):
    _, req = await oto_for(alice, "KOGE")
    await sim.admin.set_faults(risk_challenge_accepted=[ACCOUNT])
    with pytest.raises(RiskChallenge) as e:
        await alice.place_oto(req)
    placed = e.value.placed
    assert e.value.may_exist and placed is not None
    orders = {o["order_id"]: o for o in (await sim.admin.account(ACCOUNT))["orders"]}
    assert set(orders) == {placed.working_order_id, placed.pending_order_id}
    assert orders[placed.working_order_id]["position"] == "OTO_WORKING"
    assert (await alice.place_oto(req)).working_order_id  # one-shot: the next is plain


async def test_5xx_on_reads_is_retried(sim, alice):
    await sim.admin.set_faults(error_next=2, error_status=503)
    assert (await alice.user_volume()).total_volume == 0


async def test_5xx_on_order_is_outcome_unknown_and_not_resent(sim, alice):
    _, req = await oto_for(alice, "KOGE")
    await sim.admin.set_faults(error_next=1, error_status=502, paths=["oto-order"])
    with pytest.raises(OutcomeUnknown):
        await alice.place_oto(req)
    assert (await sim.admin.account(ACCOUNT))["oto_count"] == 0


async def test_late_reply_on_order_is_outcome_unknown_but_order_exists(sim):
    c = AlphaClient(
        base_url=sim.base_url,
        credentials=sim.credentials(ACCOUNT),
        request_timeout=0.3,
        retry_base_delay=0,
    )
    async with c:
        _, req = await oto_for(c, "KOGE")
        await sim.admin.set_faults(
            hang_next=1, hang_seconds=2, hang_after=True, paths=["oto-order"]
        )
        with pytest.raises(OutcomeUnknown):
            await c.place_oto(req)
        # finding out, as the caller must: the order is there
        now = int(sim.sim.clock.time() * 1000)
        hist = await c.order_history(start_ms=now - 60_000, end_ms=now + 60_000)
        assert any(h.contingency_position == "OTO_WORKING" for h in hist)


async def test_rate_limit_session_expiry_and_risk_challenge(sim, alice):
    await sim.admin.set_faults(rate_limit_next=1, retry_after=3)
    with pytest.raises(RateLimited) as e:
        await alice.token_list()
    assert e.value.retry_after == 3
    _, req = await oto_for(alice, "KOGE")
    await sim.admin.set_faults(risk_challenge=[ACCOUNT])
    with pytest.raises(RiskChallenge):
        await alice.place_oto(req)
    await sim.admin.set_faults(risk_challenge=[], session_expired=[ACCOUNT])
    with pytest.raises(SessionExpired):
        await alice.user_volume()


async def test_stream_reconnects_after_server_disconnect(sim, alice, stream):
    _s, col = stream
    assert await sim.admin.disconnect_streams(ACCOUNT) == 1
    await col.wait_for(count(StreamConnected, 2))
    assert col.of(StreamDisconnected)
    # still receiving after the reconnect
    _, req = await oto_for(alice, "KOGE")
    placed = await alice.place_oto(req)
    await col.wait_for(has_report(placed.pending_order_id, "FILLED"))


async def test_stream_survives_periodic_disconnects_and_key_expiry(sim, alice):
    await sim.admin.set_config(listen_key_ttl=0.3)
    s = UserStream(alice, ws_url=sim.ws_url, initial_backoff=0.01, max_backoff=0.05, stable_after=0)
    col = Collector()
    task = asyncio.create_task(s.run(col))
    try:
        await col.wait_for(count(StreamConnected, 3))
    finally:
        await s.close()
        await asyncio.wait_for(task, 5)


async def test_stream_stops_on_expired_session(sim, alice):
    await sim.admin.set_faults(session_expired=[ACCOUNT])
    s = UserStream(alice, ws_url=sim.ws_url)
    with pytest.raises(SessionExpired):
        await asyncio.wait_for(s.run(Collector()), 5)


async def test_stream_reconnects_on_periodic_server_disconnects(sim, alice):
    await sim.admin.set_faults(disconnect_every=0.2)
    s = UserStream(alice, ws_url=sim.ws_url, initial_backoff=0.01, max_backoff=0.05, stable_after=0)
    col = Collector()
    task = asyncio.create_task(s.run(col))
    try:
        await col.wait_for(count(StreamConnected, 3))
        assert all(d.reason == "closed by server" for d in col.of(StreamDisconnected))
    finally:
        await s.close()
        await asyncio.wait_for(task, 5)
