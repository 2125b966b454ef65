"""Every fault the sim can inject is observable by a client, and scoped as asked."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.samples import SAMPLES
from tests.sim.conftest import PATHS, koge_oto

SESSION_EXPIRED = SAMPLES / "error_session_expired.json"
EXPECTED_EXPIRED = {
    "code": "100002001",
    "message": "登录状态已经失效，请重新登录！",
    "success": False,
}
REAL_EXPIRED = json.loads(SESSION_EXPIRED.read_text()) if SESSION_EXPIRED.exists() else None


async def test_csrf_mismatch_or_missing_session_is_the_real_session_expired(harness) -> None:
    creds = harness.credentials("alice")
    bad_headers = {**creds.headers, "csrftoken": "0" * 32}
    cases = [
        (creds.cookies, bad_headers),
        ({k: v for k, v in creds.cookies.items() if k != "p20t"}, creds.headers),
        ({k: v for k, v in creds.cookies.items() if k != "cr00"}, creds.headers),
    ]
    for cookies, headers in cases:
        async with aiohttp.ClientSession(cookies=cookies, headers=headers) as s:
            async with s.get(harness.base_url + PATHS["user_volume"]) as resp:
                assert resp.status == 200
                body = await resp.json()
        assert body == EXPECTED_EXPIRED
        if REAL_EXPIRED is not None:
            assert body == REAL_EXPIRED


async def test_session_expiry_for_one_account(harness, browser_for) -> None:
    alice, bob = browser_for("alice"), browser_for("bob")
    await harness.admin.set_faults(session_expired=["alice"])
    assert (await alice.get("user_volume")) == EXPECTED_EXPIRED
    assert (await alice.post("oto", koge_oto())) == EXPECTED_EXPIRED
    assert (await bob.get("user_volume"))["success"] is True
    assert (await harness.admin.account("alice"))["orders"] == []
    await harness.admin.set_faults(session_expired_http=401)
    assert (await alice.raw("GET", "user_volume")).status == 401
    assert (await bob.raw("GET", "user_volume")).status == 200


async def test_http_errors_next_and_scoped(harness, browser_for) -> None:
    alice, bob = browser_for("alice"), browser_for("bob")
    await harness.admin.set_faults(error_next=2, error_status=502, account="alice")
    assert (await bob.raw("GET", "user_volume")).status == 200
    assert (await alice.raw("GET", "user_volume")).status == 502
    assert (await alice.raw("GET", "open_orders")).status == 502
    assert (await alice.raw("GET", "user_volume")).status == 200
    await harness.admin.set_faults(error_rate=1.0, account=None, paths=["get-open-order"])
    assert (await bob.raw("GET", "open_orders")).status == 502
    assert (await bob.raw("GET", "user_volume")).status == 200
    # the admin API is never faulted
    assert "alice" in (await harness.admin.state())["accounts"]


async def test_rate_limit_answers_429_with_retry_after(harness, alice) -> None:
    await harness.admin.set_faults(rate_limit_next=1, retry_after=3)
    resp = await alice.raw("GET", "ticker")
    assert resp.status == 429 and resp.headers["Retry-After"] == "3"
    assert (await alice.raw("GET", "ticker")).status == 200


async def test_hanging_request_times_out_the_caller(harness, alice) -> None:
    await harness.admin.set_faults(hang_next=1, hang_seconds=0.3)
    url = harness.base_url + PATHS["open_orders"]
    with pytest.raises(asyncio.TimeoutError):
        async with alice.s.get(url, timeout=aiohttp.ClientTimeout(total=0.05)):
            pass
    assert (await alice.get("open_orders"))["success"] is True


async def test_hang_after_places_the_order_but_answers_late(harness, alice) -> None:
    await harness.admin.set_faults(hang_next=1, hang_seconds=0.3, hang_after=True)
    url = harness.base_url + PATHS["oto"]
    with pytest.raises(asyncio.TimeoutError):
        async with alice.s.post(url, json=koge_oto(), timeout=aiohttp.ClientTimeout(total=0.05)):
            pass
    acc = await harness.admin.account("alice")
    assert acc["oto_count"] == 1  # the outcome was unknown to the caller, but it happened


async def test_risk_challenge_on_the_next_order_only(harness, alice) -> None:
    await harness.admin.set_faults(risk_challenge=["alice"])
    resp = await alice.raw("POST", "oto", koge_oto())
    body = await resp.json()
    assert body["success"] is False and body["code"] == "100001003"
    assert resp.headers["risk_challenge_biz_no"] and resp.headers["risk_challenge_enable_flow"]
    assert (await harness.admin.account("alice"))["orders"] == []
    assert (await alice.post("oto", koge_oto()))["success"] is True


async def test_never_fill_then_release(harness, browser_for) -> None:
    alice, bob = browser_for("alice"), browser_for("bob")
    await harness.admin.set_faults(never_fill_accounts=["alice"])
    async with alice.stream() as stream:
        placed = (await alice.post("oto", koge_oto()))["data"]
        assert [r["X"] for r in await stream.reports(2)] == ["NEW", "PENDING"]
        async with bob.stream() as bob_stream:
            await bob.post("oto", koge_oto())
            assert [r["X"] for r in await bob_stream.reports(5)][-1] == "FILLED"
        opened = (await alice.get("open_orders"))["data"]
        assert {r["orderId"] for r in opened} == {
            str(placed["workingOrderId"]),
            str(placed["pendingOrderId"]),
        }
        await harness.admin.set_faults(never_fill_accounts=[])
        assert [r["X"] for r in await stream.reports(3)] == ["FILLED", "NEW", "FILLED"]


async def test_partial_fills(harness, alice) -> None:
    await harness.admin.set_faults(partial_fills=2)
    async with alice.stream() as stream:
        placed = (await alice.post("oto", koge_oto(qty="0.2082")))["data"]
        reports = await stream.reports(7)
    assert [(r["S"], r["X"]) for r in reports] == [
        ("BUY", "NEW"),
        ("SELL", "PENDING"),
        ("BUY", "PARTIALLY_FILLED"),
        ("BUY", "FILLED"),
        ("SELL", "NEW"),
        ("SELL", "PARTIALLY_FILLED"),
        ("SELL", "FILLED"),
    ]
    assert reports[2]["l"] == "0.10410000" and reports[3]["z"] == "0.20820000"
    trades = await alice.get(
        "user_trades", orderId=str(placed["workingOrderId"]), symbol="ALPHA_22USDT"
    )
    assert len(trades["data"]) == 2


async def test_dropped_stream_events_are_silently_missing(harness, alice) -> None:
    async with alice.stream() as stream:
        await harness.admin.set_faults(drop_events=1.0)
        first = (await alice.post("oto", koge_oto()))["data"]
        await harness.admin.set_faults(drop_events=0.0)
        second = (await alice.post("oto", koge_oto()))["data"]
        msg = (await stream.next())["data"]
    assert msg["i"] == str(second["workingOrderId"])
    hist = (await alice.get("history"))["data"]
    assert {r["status"] for r in hist if r["orderId"] == str(first["workingOrderId"])} == {"FILLED"}
    assert (await harness.admin.state())["stream"]["dropped"] == 5


async def test_stream_disconnect_now_and_every(harness, browser_for) -> None:
    alice, bob = browser_for("alice"), browser_for("bob")
    async with alice.stream() as a, bob.stream() as b:
        assert await harness.admin.disconnect_streams("alice") == 1
        assert await a.closed()
        await bob.post("oto", koge_oto())
        assert (await b.next())["data"]["X"] == "NEW"  # bob's stream untouched
    await harness.admin.set_faults(disconnect_every=0.05)
    async with alice.stream() as a:
        assert await a.closed()


async def test_listen_key_expires_after_its_ttl(harness, alice) -> None:
    await harness.admin.set_config(listen_key_ttl=60)
    async with alice.stream() as a:
        await harness.admin.advance_time(61)
        assert await a.closed()
    # a subscribe with a dead key is acked, then the stream ends
    key = a.key
    ws = await alice.s.ws_connect(harness.ws_url)
    await ws.send_json({"method": "SUBSCRIBE", "params": [f"alpha@{key}"], "id": 7})
    assert await ws.receive_json(timeout=5) == {"result": None, "id": 7}
    msg = await ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await ws.close()
    # a short real-time TTL closes the stream on its own
    await harness.admin.set_config(listen_key_ttl=0.05)
    async with alice.stream() as a:
        assert await a.closed()


async def test_request_counts_per_path_and_account(harness, alice) -> None:
    await alice.get("open_orders")
    await alice.get("open_orders")
    await alice.post("listen_key")
    acc = await harness.admin.account("alice")
    assert acc["requests"]["/bapi/defi/v1/private/alpha-trade/order/get-open-order"] == 2
    assert acc["requests"]["/bapi/defi/v1/private/alpha-trade/get-listen-key"] == 1
