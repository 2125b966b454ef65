"""AlphaClient against a scripted bapi server over real sockets."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from exchange import client as C
from exchange.client import AlphaClient
from exchange.errors import (
    ExchangeError,
    InsufficientBalance,
    OrderNotOpen,
    OrderParametersRejected,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    RiskChallenge,
    SessionExpired,
    TransportError,
    UnknownToken,
)
from exchange.models import OtoPlaced, SymbolFilters
from exchange.ordermath import plan_limit, plan_oto
from tests.exchange.conftest import SECRETS, free_port
from tests.exchange.fakebapi import Reply, envelope, sample

KOGE = SymbolFilters(
    symbol="ALPHA_22USDT",
    base_asset="ALPHA_22",
    tick_size=Decimal("0.00000001"),
    step_size=Decimal("0.0001"),
    min_qty=Decimal("0.0001"),
    min_notional=Decimal("0.1"),
)


def assert_no_secret(text: str) -> None:
    for s in SECRETS:
        assert s not in text


async def test_public_reads(client, fake):
    tokens = await client.token_list()
    assert [t.symbol for t in tokens] == ["KOGE", "AOP"]
    assert (await client.agg_ticker())[1].mul_point == Decimal(4)
    assert fake.calls(C.P_AGG_TICKER)[0].query == {"dataType": "aggregate"}
    t = await client.ticker("ALPHA_175USDT")
    assert t.last_price == Decimal("0.00171695")
    assert fake.calls(C.P_TICKER)[0].query == {"symbol": "ALPHA_175USDT"}
    info = await client.exchange_info()
    assert info.get("ALPHA_382USDT").step_size == Decimal("0.01")
    koge = await client.token("koge")
    assert koge.alpha_id == "ALPHA_22"
    assert (await client.token("ALPHA_382")).symbol == "AOP"
    with pytest.raises(UnknownToken):
        await client.token("NOPE")
    assert client.request_count == 7


async def test_private_requests_carry_session_and_fresh_trace_ids(client, fake, creds):
    vol = await client.user_volume()
    assert vol.volume_of("AITECH") == Decimal("197.43566840519998")
    await client.user_volume()
    a, b = fake.calls(C.P_USER_VOLUME)
    for seen in (a, b):
        h = {k.lower(): v for k, v in seen.headers.items()}
        assert f"p20t={creds.cookies['p20t']}" in h["cookie"]
        assert h["csrftoken"] == creds.headers["csrftoken"]
        assert h["clienttype"] == "web"
        assert h["bnc-uuid"] == "bncUUIDsecret0003"
        assert h["user-agent"] == "Mozilla/5.0 TestBrowser"
        assert "content-type" not in h  # GET without body
        uuid.UUID(h["x-trace-id"])
        uuid.UUID(h["x-ui-request-trace"])
        assert h["x-trace-id"] != "stale-trace-id"
        # nothing beyond what a browser sends (the copied content-length is not replayed)
        assert set(h) <= {
            "host",
            "accept",
            "accept-encoding",
            "clienttype",
            "csrftoken",
            "bnc-uuid",
            "fvideo-token",
            "user-agent",
            "lang",
            "cookie",
            "x-trace-id",
            "x-ui-request-trace",
        }
    assert a.headers["x-trace-id"] != b.headers["x-trace-id"]
    assert a.headers["x-ui-request-trace"] != b.headers["x-ui-request-trace"]


async def test_place_oto_sends_browser_body_and_returns_string_ids(client, fake):
    req = plan_oto(KOGE, Decimal("48.017065415"), Decimal("0.001"), Decimal("10"))
    placed = await client.place_oto(req)
    assert (placed.working_order_id, placed.pending_order_id) == ("176849327", "176849328")
    (seen,) = fake.calls(C.P_OTO_PLACE)
    assert seen.method == "POST"
    assert seen.headers["Content-Type"] == "application/json"
    body = json.loads(seen.body)
    assert body["workingPrice"] == 48.01706542 and body["workingQuantity"] == 0.2082
    assert body["paymentDetails"] == [{"amount": "9.99715302", "paymentWalletType": "CARD"}]
    assert body["pendingType"] == "LIMIT" and body["workingSide"] == "BUY"


async def test_limit_order_cancel_and_reads(client, fake):
    req = plan_limit(KOGE, "SELL", Decimal("47.5"), Decimal("0.2081"))
    assert await client.place_limit(req) == "2459886"
    await client.cancel("2459886", "ALPHA_22USDT")
    assert json.loads(fake.calls(C.P_CANCEL)[0].body) == {
        "orderId": "2459886",
        "symbol": "ALPHA_22USDT",
    }
    assert await client.open_orders() == []
    assert fake.calls(C.P_OPEN_ORDERS)[0].query == {"side": ""}
    await client.open_orders("BUY")
    assert fake.calls(C.P_OPEN_ORDERS)[1].query == {"side": "BUY"}
    hist = await client.order_history(start_ms=1, end_ms=2, rows=50, status="FILLED")
    assert hist[0].contingency_position == "OTO_WORKING"
    assert fake.calls(C.P_HISTORY)[0].query == {
        "page": "1",
        "rows": "50",
        "orderStatus": "FILLED",
        "startTime": "1",
        "endTime": "2",
    }
    trades = await client.user_trades("2466831", "ALPHA_971USDT")
    assert trades[0].commission == Decimal("0.00027268")
    assert fake.calls(C.P_USER_TRADES)[0].query == {"orderId": "2466831", "symbol": "ALPHA_971USDT"}
    assert await client.listen_key() == "0123456789abcdef0123456789abcdef"
    wallet = await client.wallet()
    assert wallet[1].symbol == "COAI" and wallet[1].free == Decimal(250)
    assert fake.calls(C.P_WALLET)[0].query == {"includeCex": "1"}


async def test_session_expired_envelope_is_typed_and_not_retried(client, fake):
    fake.on(C.P_USER_VOLUME, Reply(body=sample("error_session_expired.json")))
    with pytest.raises(SessionExpired) as e:
        await client.user_volume()
    assert e.value.code == "100002001"
    assert len(fake.calls(C.P_USER_VOLUME)) == 1
    assert_no_secret(str(e.value) + repr(e.value))


@pytest.mark.parametrize("status", [401, 403])
async def test_http_401_403_is_session_expired(client, fake, status):
    fake.on(C.P_OPEN_ORDERS, Reply(status=status, body=b"denied"))
    with pytest.raises(SessionExpired) as e:
        await client.open_orders()
    assert e.value.http_status == status
    assert len(fake.calls(C.P_OPEN_ORDERS)) == 1


async def test_risk_challenge_headers_code_and_message(client, fake):
    req = plan_oto(KOGE, Decimal("48"), Decimal("47"), Decimal("10"))
    fake.on(
        C.P_OTO_PLACE,
        Reply(
            body=envelope(None, code="000000"),
            headers={"risk_challenge_biz_no": "abc", "risk_challenge_enable_flow": "true"},
        ),
        Reply(body=envelope(None, code="100001003", message="x", success=False)),
        Reply(
            body=envelope(None, code="999", message="Please complete verification", success=False)
        ),
    )
    for _ in range(3):
        with pytest.raises(RiskChallenge):
            await client.place_oto(req)
    assert len(fake.calls(C.P_OTO_PLACE)) == 3  # one per call: never retried


async def test_risk_headers_on_an_accepted_order_stop_but_hand_over_the_placed_ids(client, fake):
    """DESIGN 3: a reply with risk-challenge headers can still carry an order id: such an
    order exists. The caller must get the ids to adopt the order."""
    risk = {"risk_challenge_biz_no": "", "risk_challenge_enable_flow": "true"}
    fake.on(C.P_OTO_PLACE, Reply(body=sample("oto_place_response.json"), headers=risk))
    fake.on(C.P_LIMIT_PLACE, Reply(body=sample("limit_order_place_response.json"), headers=risk))
    with pytest.raises(RiskChallenge) as e:
        await client.place_oto(plan_oto(KOGE, Decimal("48"), Decimal("47"), Decimal("10")))
    assert e.value.may_exist is True
    assert isinstance(e.value.placed, OtoPlaced)
    assert (e.value.placed.working_order_id, e.value.placed.pending_order_id) == (
        "176849327",
        "176849328",
    )
    assert "was placed (working 176849327, pending 176849328)" in str(e.value)
    with pytest.raises(RiskChallenge) as e:
        await client.place_limit(plan_limit(KOGE, "SELL", Decimal("48"), Decimal("1")))
    assert e.value.may_exist and isinstance(e.value.placed, str) and e.value.placed.isdigit()


@pytest.mark.parametrize(
    ("body", "may_exist"),
    [
        (envelope(None), True),  # accepted, no ids: look it up
        (envelope({"workingOrderId": "x1"}), True),  # ids unreadable: look it up
        (b"<html>challenge</html>", True),
        (envelope(None, code="100001003", message="verify", success=False), False),
    ],
)
async def test_risk_headers_without_readable_ids(client, fake, body, may_exist):
    fake.on(C.P_OTO_PLACE, Reply(body=body, headers={"risk_challenge_enable_flow": "true"}))
    with pytest.raises(RiskChallenge) as e:
        await client.place_oto(plan_oto(KOGE, Decimal("48"), Decimal("47"), Decimal("10")))
    assert e.value.placed is None and e.value.may_exist is may_exist


async def test_unreadable_order_ids_are_outcome_unknown(client, fake):
    fake.on(C.P_OTO_PLACE, Reply(body=envelope({"workingOrderId": None})))
    with pytest.raises(OutcomeUnknown):
        await client.place_oto(plan_oto(KOGE, Decimal("48"), Decimal("47"), Decimal("10")))


@pytest.mark.parametrize("status", [429, 418])
async def test_rate_limited_carries_retry_after(client, fake, status):
    fake.on(C.P_TOKEN_LIST, Reply(status=status, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimited) as e:
        await client.token_list()
    assert e.value.retry_after == 7.0 and e.value.http_status == status
    assert len(fake.calls(C.P_TOKEN_LIST)) == 1


async def test_get_retries_5xx_then_succeeds(client, fake):
    fake.on(
        C.P_USER_VOLUME,
        Reply(status=502),
        Reply(status=503),
        Reply(body=sample("user_volume.json")),
    )
    vol = await client.user_volume()
    assert vol.total_volume == Decimal("197.43566840519998")
    assert len(fake.calls(C.P_USER_VOLUME)) == 3


async def test_get_gives_up_after_bounded_retries(client, fake):
    fake.on(C.P_USER_VOLUME, Reply(status=500))
    with pytest.raises(TransportError) as e:
        await client.user_volume()
    assert len(fake.calls(C.P_USER_VOLUME)) == client.max_get_retries + 1
    assert e.value.http_status == 500


async def test_hanging_get_times_out_and_raises_transport_error(fake, creds):
    fake.on(C.P_TICKER, Reply(hang=True))
    async with AlphaClient(
        base_url=fake.base_url,
        credentials=creds,
        request_timeout=0.2,
        max_get_retries=1,
        retry_base_delay=0,
    ) as c:
        with pytest.raises(TransportError, match="timed out"):
            await c.ticker("ALPHA_22USDT")
    assert len(fake.calls(C.P_TICKER)) == 2


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=500),
        Reply(status=502, body=b"<html>bad gateway</html>"),
        Reply(hang=True),
        Reply(status=200, body=b"<html>not json</html>"),
    ],
)
async def test_order_post_failure_is_outcome_unknown_and_never_retried(fake, creds, reply):
    fake.on(C.P_OTO_PLACE, reply)
    fake.on(C.P_LIMIT_PLACE, reply)
    async with AlphaClient(
        base_url=fake.base_url, credentials=creds, request_timeout=0.3, retry_base_delay=0
    ) as c:
        with pytest.raises(OutcomeUnknown):
            await c.place_oto(plan_oto(KOGE, Decimal("48"), Decimal("47"), Decimal("10")))
        with pytest.raises(OutcomeUnknown):
            await c.place_limit(plan_limit(KOGE, "SELL", Decimal("48"), Decimal("1")))
    assert len(fake.calls(C.P_OTO_PLACE)) == 1
    assert len(fake.calls(C.P_LIMIT_PLACE)) == 1


async def test_order_post_to_closed_port_is_transport_error(creds):
    async with AlphaClient(
        base_url=f"http://127.0.0.1:{free_port()}", credentials=creds, retry_base_delay=0
    ) as c:
        with pytest.raises(TransportError, match="not sent"):
            await c.place_oto(plan_oto(KOGE, Decimal("48"), Decimal("47"), Decimal("10")))
        with pytest.raises(TransportError):
            await c.token_list()


REFUSALS = [
    # the real replies, then the shapes DESIGN 3 says may come: fields null, missing,
    # strings or objects, whatever but code and success
    (sample("error_incorrect_price_481002.json"), OrderParametersRejected, "481002",
     "Unable to place order due to incorrect price or amount."),
    (sample("error_amount_mismatch_000002.json"), OrderParametersRejected, "000002",
     "price*quantity must be the same as sum(paymentDetail.amount)"),
    (json.dumps({"code": "481020", "message": "余额不足，下单失败。", "success": False}).encode(),
     InsufficientBalance, "481020", "余额不足，下单失败。"),
    (json.dumps({"code": "481013", "success": False}).encode(),
     OrderParametersRejected, "481013", "order value below the minimum (0.1 USDT)"),
    (json.dumps({"code": "481020", "message": {"k": 1}, "messageDetail": "余额不足，下单失败。",
                 "data": "", "success": False, "total": "x"}).encode(),
     InsufficientBalance, "481020", "余额不足，下单失败。"),
    (json.dumps({"code": "481002", "message": None, "messageDetail": [1, {"a": None}],
                 "data": {"x": 1}, "success": False}).encode(),
     OrderParametersRejected, "481002",
     "incorrect price or amount (a price off the tick or a quantity off the lot step)"),
    (b'{"code":"000002","message":1e999,"messageDetail":null,"data":NaN,"success":false}',
     OrderParametersRejected, "000002",
     "payment amount is not price x quantity truncated to 8 decimals"),
    (json.dumps({"code": 999999, "message": "Something new", "success": False}).encode(),
     OrderRejected, "999999", "Something new"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "cls", "code", "message"), REFUSALS)
async def test_every_order_refusal_is_order_rejected_with_the_exchanges_words(
    client, fake, body, cls, code, message
):
    fake.on(C.P_OTO_PLACE, Reply(body=body))
    fake.on(C.P_LIMIT_PLACE, Reply(body=body))
    for place in (
        lambda: client.place_oto(plan_oto(KOGE, Decimal("48"), Decimal("47"), Decimal("10"))),
        lambda: client.place_limit(plan_limit(KOGE, "SELL", Decimal("48"), Decimal("1"))),
    ):
        with pytest.raises(OrderRejected) as e:
            await place()
        assert type(e.value) is cls
        assert (e.value.code, e.value.message, e.value.http_status) == (code, message, 200)
        assert not isinstance(e.value, OutcomeUnknown)
    assert len(fake.calls(C.P_OTO_PLACE)) == 1  # a refusal is never retried


async def test_a_4xx_without_an_envelope_is_a_refusal_but_a_2xx_is_unknown(client, fake):
    fake.on(C.P_OTO_PLACE, Reply(status=400, body=b"<html>Bad Request</html>"))
    req = plan_oto(KOGE, Decimal("48"), Decimal("47"), Decimal("10"))
    with pytest.raises(OrderRejected) as e:
        await client.place_oto(req)
    assert e.value.http_status == 400 and e.value.code is None
    fake.script[C.P_OTO_PLACE] = [Reply(status=200, body=b"<html>ok?</html>")]
    with pytest.raises(OutcomeUnknown):
        await client.place_oto(req)


async def test_order_rejected_names_code_and_message(client, fake):
    fake.on(
        C.P_OTO_PLACE,
        Reply(body=envelope(None, code="345126", message="Insufficient balance", success=False)),
    )
    with pytest.raises(OrderRejected) as e:
        await client.place_oto(plan_oto(KOGE, Decimal("48"), Decimal("47"), Decimal("10")))
    assert e.value.code == "345126" and "Insufficient balance" in str(e.value)
    assert not isinstance(e.value, OutcomeUnknown)


async def test_cancel_of_a_gone_order_is_order_not_open(client, fake):
    fake.on(
        C.P_CANCEL,
        Reply(status=502),
        Reply(body=envelope(None, code="-2011", message="Order does not exist.", success=False)),
    )
    with pytest.raises(OrderNotOpen):
        await client.cancel("1", "ALPHA_22USDT")
    assert len(fake.calls(C.P_CANCEL)) == 2  # the 502 was retried: a cancel is safe to repeat


async def test_private_call_without_credentials_sends_nothing(fake):
    async with AlphaClient(base_url=fake.base_url) as c:
        with pytest.raises(ExchangeError, match="logged-in"):
            await c.user_volume()
        assert (await c.token_list())[0].symbol == "KOGE"
    assert not fake.calls(C.P_USER_VOLUME)


async def test_logs_and_errors_never_show_secrets(client, fake, creds):
    fake.on(C.P_USER_VOLUME, Reply(status=500), Reply(body=sample("error_session_expired.json")))
    with capture_logs() as logs:
        await client.token_list()
        with pytest.raises(SessionExpired) as e:
            await client.user_volume()
    assert any(entry.get("path") == C.P_TOKEN_LIST and entry.get("status") == 200 for entry in logs)
    assert all("ms" in entry and "method" in entry for entry in logs)
    assert_no_secret(repr(logs) + str(e.value) + repr(e.value) + repr(client) + repr(creds))
