"""UserStream against a scripted WebSocket server over real sockets."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from aiohttp import WSMsgType, web
from structlog.testing import capture_logs

from exchange import client as C
from exchange.errors import RiskChallenge, SessionExpired
from exchange.models import ExecutionReport
from exchange.stream import StreamConnected, StreamDisconnected, UserStream
from tests.exchange.fakebapi import Reply, envelope, sample

WS_PATH = "/w3w/stream"
PUSHES = json.loads(sample("execution_report_oto_sequence.json"))


class FakeStream:
    """A stream server whose behaviour per connection comes from ``modes`` (last repeats):
    ``normal`` acks and sends the six OTO pushes; ``silent`` acks, then never answers
    anything again (no pongs either); ``no_ack`` never acks."""

    def __init__(self, modes: list[str]) -> None:
        self.modes = modes
        self.subscribes: list[dict] = []
        self.connections = 0
        self.open: list[web.WebSocketResponse] = []

    async def drop_all(self) -> None:
        for ws in list(self.open):
            await ws.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        mode = self.modes[min(self.connections, len(self.modes) - 1)]
        self.connections += 1
        ws = web.WebSocketResponse(autoping=mode != "silent")
        await ws.prepare(request)
        self.open.append(ws)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            req = json.loads(msg.data)
            self.subscribes.append(req)
            if mode == "no_ack":
                continue
            await ws.send_str(json.dumps({"result": None, "id": req["id"]}))
            if mode == "normal":
                # a push of another kind must be skipped, not crash the reader
                await ws.send_str(
                    json.dumps({"stream": "x", "data": {"e": "outboundAccountPosition", "B": []}})
                )
                for push in PUSHES:
                    await ws.send_str(json.dumps(push))
            if mode == "hostile":
                for text in HOSTILE_PUSHES:
                    await ws.send_str(text)
        return ws


def _poisoned(index: int, field: str, raw_value: str) -> str:
    """Push ``index`` of the OTO sequence with ``field`` written as ``raw_value`` (raw JSON
    text, so bare NaN tokens are possible)."""
    push = json.loads(json.dumps(PUSHES[index]))
    push["data"][field] = "@@"
    return json.dumps(push).replace('"@@"', raw_value)


HOSTILE_PUSHES = [
    json.dumps(PUSHES[0]),
    json.dumps(PUSHES[1]),
    _poisoned(2, "z", "NaN"),  # the buy fill, with a NaN cumulative quantity
    _poisoned(3, "q", '"-869.47"'),
    _poisoned(4, "n", "1e999"),
    _poisoned(4, "Z", "true"),
    json.dumps(PUSHES[5]),
]


class Collector:
    def __init__(self) -> None:
        self.events: list = []
        self.changed = asyncio.Condition()

    async def __call__(self, event) -> None:
        async with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    async def wait_for(self, pred, limit: float = 5.0):
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: pred(self.events)), limit)

    def of(self, tp) -> list:
        return [e for e in self.events if isinstance(e, tp)]


def count(tp, n):
    return lambda evs: sum(isinstance(e, tp) for e in evs) >= n


@pytest.fixture
async def make_stream(fake, client):
    streams: list[UserStream] = []
    tasks: list[asyncio.Task] = []

    def make(modes, **kw):
        fs = FakeStream(modes)
        fake.extra[WS_PATH] = fs.handle
        opts = dict(
            ping_interval=0.05,
            dead_after=2.0,
            initial_backoff=0.01,
            max_backoff=0.05,
            ack_timeout=1.0,
            stable_after=0,
        )
        opts.update(kw)
        s = UserStream(client, ws_url=fake.base_url.replace("http", "ws") + WS_PATH, **opts)
        col = Collector()
        streams.append(s)
        task = asyncio.create_task(s.run(col))
        tasks.append(task)
        return fs, s, col, task

    yield make
    for s in streams:
        await s.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_subscribes_with_fresh_key_and_emits_typed_reports(make_stream, fake):
    with capture_logs() as logs:
        fs, stream, col, _ = make_stream(["normal"])
        await col.wait_for(count(ExecutionReport, 6))
    assert "0123456789abcdef" not in repr(logs)  # the listen key is never logged
    assert isinstance(col.events[0], StreamConnected) and stream.connected
    assert fs.subscribes[0] == {
        "method": "SUBSCRIBE",
        "params": ["alpha@0123456789abcdef0123456789abcdef"],
        "id": 1,
    }
    reports = col.of(ExecutionReport)
    assert [(r.side, r.status) for r in reports] == [
        ("BUY", "NEW"),
        ("SELL", "PENDING"),
        ("BUY", "FILLED"),
        ("SELL", "NEW"),
        ("SELL", "PARTIALLY_FILLED"),
        ("SELL", "FILLED"),
    ]
    assert reports[2].cum_quote == Decimal("197.30724223") and reports[2].order_id == "51481849"
    assert len(fake.calls(C.P_LISTEN_KEY)) == 1
    assert await stream.wait_connected(0.1)


async def test_silent_dead_connection_is_detected_and_replaced(make_stream, fake):
    fs, _stream, col, _ = make_stream(["silent", "normal"], dead_after=0.3)
    await col.wait_for(count(StreamConnected, 2))
    disc = col.of(StreamDisconnected)
    assert disc and "dead" in disc[0].reason
    assert len(fake.calls(C.P_LISTEN_KEY)) == 2  # a fresh key for the new connection
    assert [s["id"] for s in fs.subscribes] == [1, 2]
    await col.wait_for(count(ExecutionReport, 6))


async def test_missing_ack_means_reconnect(make_stream, fake):
    fs, _stream, col, _ = make_stream(["no_ack", "normal"], ack_timeout=0.2)
    await col.wait_for(count(StreamConnected, 1))
    assert fs.connections == 2
    assert not col.of(StreamDisconnected)  # never subscribed, so nothing to report lost
    assert len(fake.calls(C.P_LISTEN_KEY)) == 2


async def test_rotates_key_on_schedule(make_stream, fake):
    _fs, _stream, col, _ = make_stream(["normal"], rotate_seconds=0.2)
    await col.wait_for(count(StreamConnected, 3))
    assert col.of(StreamDisconnected)[0].reason == "rotate listen key"
    assert len(fake.calls(C.P_LISTEN_KEY)) >= 3


async def test_server_close_reconnects_and_signals(make_stream, fake):
    fs, _stream, col, _ = make_stream(["normal"])
    await col.wait_for(count(ExecutionReport, 6))
    await fs.drop_all()
    await col.wait_for(count(StreamConnected, 2))
    assert col.of(StreamDisconnected)[0].reason == "closed by server"
    assert len(fake.calls(C.P_LISTEN_KEY)) == 2
    await col.wait_for(count(ExecutionReport, 12))


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(body=sample("error_session_expired.json")), SessionExpired),
        (
            Reply(body=envelope(None, code="100001003", message="verify", success=False)),
            RiskChallenge,
        ),
    ],
)
async def test_session_and_risk_errors_stop_the_stream(make_stream, fake, reply, error):
    fake.on(C.P_LISTEN_KEY, reply)
    fs, _stream, _col, task = make_stream(["normal"])
    with pytest.raises(error):
        await asyncio.wait_for(task, 5)
    assert len(fake.calls(C.P_LISTEN_KEY)) == 1 and fs.connections == 0


async def test_listen_key_outage_backs_off_and_recovers(make_stream, fake):
    fake.on(C.P_LISTEN_KEY, *[Reply(status=503)] * 6, Reply(body=sample("listen_key.json")))
    _fs, _stream, col, _ = make_stream(["normal"])
    await col.wait_for(count(StreamConnected, 1))
    assert len(fake.calls(C.P_LISTEN_KEY)) == 7


async def test_close_ends_run(make_stream):
    _fs, stream, col, task = make_stream(["normal"])
    await col.wait_for(count(StreamConnected, 1))
    await stream.close()
    await asyncio.wait_for(task, 5)
    assert not stream.connected
    assert col.of(StreamDisconnected)[-1].reason == "closed by us"


async def test_close_before_run_starts_is_not_lost(fake, client):
    s = UserStream(client, ws_url=fake.base_url.replace("http", "ws") + WS_PATH)
    await s.close()
    await asyncio.wait_for(s.run(Collector()), 2)
    assert not fake.calls(C.P_LISTEN_KEY)


async def test_a_report_with_a_bad_number_is_dropped_with_a_warning_not_fatal(make_stream):
    with capture_logs() as logs:
        fs, stream, col, task = make_stream(["hostile"])
        await col.wait_for(count(ExecutionReport, 3))  # the last good one follows the bad
    reports = col.of(ExecutionReport)
    assert [(r.side, r.status) for r in reports] == [
        ("BUY", "NEW"),
        ("SELL", "PENDING"),
        ("SELL", "FILLED"),
    ]
    dropped = [e["problem"] for e in logs if e["event"] == "stream_report_dropped"]
    assert dropped == [
        "user stream: data.z (cum_qty) is NaN",
        "user stream: data.q (qty) is negative (-869.47)",
        "user stream: data.n (fee) is absurdly large (1E+999; a fee is below 1E+15)",
        "user stream: data.Z: Expected `decimal | null`, got `bool`",
    ]
    assert all(e["log_level"] == "warning" for e in logs if e["event"] == "stream_report_dropped")
    assert stream.connected and fs.connections == 1 and not task.done()
