"""The user stream: order events pushed by the exchange over a WebSocket.

Why it works this way:
- No keepalive call is known to work for Binance Alpha listen keys (a DELETE answers 404),
  so every connection starts with a fresh key from REST and ``SUBSCRIBE alpha@<key>``,
  and the connection is replaced about every ``rotate_seconds`` (default 30 min).
- A connection can die silently (no FIN, no error). We ping every ``ping_interval`` and
  treat ``dead_after`` seconds without any frame (pongs included) as dead.
- Whatever happened while no connection was subscribed is lost. After every (re)connect
  we emit ``StreamConnected`` so the consumer asks REST (open orders, history, trades).
- A session-expired or risk-challenge answer while fetching a key is raised out of
  ``run()``: looping would only hammer a dead or challenged account.
- The listen key is treated as a secret: never logged, never in an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import msgspec
import structlog

from exchange.client import AlphaClient
from exchange.clock import SYSTEM_CLOCK, Clock
from exchange.errors import (
    ExchangeError,
    ProxyLoginRefused,
    RateLimited,
    RiskChallenge,
    SessionExpired,
)
from exchange.models import ExecutionReport, StreamMessage, SubscribeRequest
from exchange.untrusted import BadNumber, check_numbers, msgspec_field, tolerant_json

DEFAULT_WS_URL = "wss://nbstream.binance.com/w3w/stream"
ROTATE = "rotate listen key"
DEAD = "no frame (dead)"

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StreamConnected:
    """A (re)connect completed and the subscription was acknowledged. Events from before it
    may have been missed: reconcile through REST. ``connects`` counts from 1."""

    connects: int


@dataclass(frozen=True, slots=True)
class StreamDisconnected:
    """The subscribed connection ended (``reason`` says why: closed, dead, rotate ...)."""

    reason: str


StreamEvent = ExecutionReport | StreamConnected | StreamDisconnected
OnEvent = Callable[[StreamEvent], Awaitable[None] | None]

_msg_decoder = msgspec.json.Decoder(StreamMessage)
_report_decoder = msgspec.json.Decoder(ExecutionReport)
_encoder = msgspec.json.Encoder()


class _Reconnect(Exception):
    """Leave the current connection and start a new one (reason in args[0])."""


class UserStream:
    """Keeps one user's order stream subscribed and turns it into typed events.

    ``initial_backoff`` (first reconnect delay, doubling up to ``max_backoff``) and
    ``ack_timeout`` (how long to wait for the subscribe ack) can be set small in tests.
    A connection that ends within ``stable_after`` seconds counts as a failure, so a
    server that accepts and drops at once is not hammered; a planned rotation reconnects
    at once.
    """

    def __init__(
        self,
        client: AlphaClient,
        *,
        ws_url: str = DEFAULT_WS_URL,
        clock: Clock = SYSTEM_CLOCK,
        rotate_seconds: float = 1800,
        ping_interval: float = 10,
        dead_after: float = 30,
        max_backoff: float = 30,
        initial_backoff: float = 0.5,
        ack_timeout: float = 10.0,
        stable_after: float = 10.0,
    ) -> None:
        self.client = client
        self.ws_url = ws_url
        self.clock = clock
        self.rotate_seconds = rotate_seconds
        self.ping_interval = ping_interval
        self.dead_after = dead_after
        self.max_backoff = max_backoff
        self.initial_backoff = initial_backoff
        self.ack_timeout = ack_timeout
        self.stable_after = stable_after
        self.connects = 0
        self._next_id = 0
        self._connected = asyncio.Event()
        self._closing = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._last_frame = 0.0

    def __repr__(self) -> str:
        return f"UserStream(ws_url={self.ws_url!r}, connected={self.connected})"

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float) -> bool:  # noqa: ASYNC109 (contract)
        """True once subscribed (now or within ``timeout`` seconds), else False."""
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop ``run()`` (it returns normally) and close the connection."""
        self._closing.set()
        ws = self._ws
        if ws is not None and not ws.closed:
            await ws.close()

    # ------------------------------------------------------------------ main loop

    async def run(self, on_event: OnEvent) -> None:
        """Run until ``close()`` or cancellation, reconnecting with backoff.

        Raises ``SessionExpired`` / ``RiskChallenge`` (from the listen-key call),
        ``ProxyLoginRefused`` (the user's proxy refused its username or password) and
        whatever ``on_event`` raises. A stream that was closed stays closed (so a
        ``close()`` racing the start of ``run()`` is not lost).
        """
        failures = 0
        while not self._closing.is_set():
            delay = 0.0
            try:
                key = await self.client.listen_key()
                if self._closing.is_set():
                    break
                started = self.clock.monotonic()
                subscribed, reason = await self._session(key, on_event)
                lasted = self.clock.monotonic() - started
                if subscribed and (reason == ROTATE or lasted >= self.stable_after):
                    failures = 0
                else:
                    failures += 1
            except (SessionExpired, RiskChallenge, ProxyLoginRefused):
                raise
            except RateLimited as exc:
                failures += 1
                delay = exc.retry_after
                log.warning("stream_listen_key_failed", error=type(exc).__name__)
            except ExchangeError as exc:
                failures += 1
                log.warning("stream_listen_key_failed", error=type(exc).__name__, detail=str(exc))
            if self._closing.is_set():
                break
            if failures:
                delay = max(
                    delay, min(self.max_backoff, self.initial_backoff * 2 ** (failures - 1))
                )
            if delay > 0:
                await self._sleep_unless_closed(delay)

    async def _sleep_unless_closed(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        closer = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({sleeper, closer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            closer.cancel()

    async def _session(self, key: str, on_event: OnEvent) -> tuple[bool, str]:
        """One connection: connect, subscribe, pump events. (got subscribed, why it ended)"""
        subscribed = False
        reason = "closed"
        pinger: asyncio.Task[None] | None = None
        try:
            ws = await self.client.ws_connect(  # the user's route (its proxy, if any)
                self.ws_url,
                autoping=False,  # pings/pongs are handled in _receive so pongs count as life
                heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
                headers={"user-agent": self.client._static_headers["user-agent"]},
            )
        except Exception as exc:
            failed = await self.client.proxy_failed(exc)
            if isinstance(failed, ProxyLoginRefused):  # the operator's to fix: stop here
                raise failed from None
            if failed is None and not isinstance(exc, aiohttp.ClientError | OSError):
                raise
            extra = {"proxy": failed.message} if failed else {}
            log.warning("stream_connect_failed", error=type(exc).__name__, **extra)
            return False, "connect failed"
        self._ws = ws
        self._last_frame = self.clock.monotonic()
        try:
            await self._subscribe(ws, key, on_event)
            subscribed = True
            self.connects += 1
            self._connected.set()
            log.info("stream_connected", connects=self.connects)
            await _emit(on_event, StreamConnected(self.connects))
            pinger = asyncio.create_task(self._ping_loop(ws))
            await self._pump(ws, on_event)
        except _Reconnect as r:
            reason = str(r)
        finally:
            self._connected.clear()
            if pinger is not None:
                pinger.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pinger
            self._ws = None
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close()
        if self._closing.is_set():
            reason = "closed by us"
        if subscribed:
            log.info("stream_disconnected", reason=reason)
            await _emit(on_event, StreamDisconnected(reason))
        else:
            log.warning("stream_subscribe_failed", reason=reason)
        return subscribed, reason

    async def _subscribe(
        self, ws: aiohttp.ClientWebSocketResponse, key: str, on_event: OnEvent
    ) -> None:
        self._next_id += 1
        sub_id = self._next_id
        request = SubscribeRequest("SUBSCRIBE", [f"alpha@{key}"], sub_id)
        await ws.send_str(_encoder.encode(request).decode())
        deadline = self.clock.monotonic() + self.ack_timeout
        while True:
            msg = await self._receive(ws, deadline, "no subscribe ack")
            if msg.id is not None and str(msg.id) == str(sub_id):
                if msg.error is not None:
                    raise _Reconnect("subscribe refused")
                return
            await self._dispatch(msg, on_event)

    async def _receive(
        self, ws: aiohttp.ClientWebSocketResponse, deadline: float, why: str
    ) -> StreamMessage:
        """The next JSON frame. Raises ``_Reconnect(why)`` at ``deadline`` (monotonic),
        ``_Reconnect("no frame (dead)")`` after ``dead_after`` seconds without any frame
        (pongs count: we handle pings/pongs ourselves so that they do)."""
        while True:
            now = self.clock.monotonic()
            dead_at = self._last_frame + self.dead_after
            left = min(deadline, dead_at) - now
            if left <= 0:
                raise _Reconnect(why if deadline <= dead_at else DEAD)
            try:
                frame = await ws.receive(timeout=left)
            except TimeoutError:
                continue  # the loop head decides which deadline passed
            self._last_frame = self.clock.monotonic()
            kind = frame.type
            if kind is aiohttp.WSMsgType.TEXT or kind is aiohttp.WSMsgType.BINARY:
                msg = _decode_frame(frame.data)
                if msg is None:
                    log.debug("stream_frame_unreadable")
                    continue
                return msg
            if kind is aiohttp.WSMsgType.PING:
                with contextlib.suppress(Exception):
                    await ws.pong(frame.data)
                continue
            if kind is aiohttp.WSMsgType.PONG:
                continue
            if kind in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
            ):
                raise _Reconnect("closed by server")
            if kind is aiohttp.WSMsgType.ERROR:
                raise _Reconnect("connection error")

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse, on_event: OnEvent) -> None:
        rotate_at = self.clock.monotonic() + self.rotate_seconds
        while not self._closing.is_set():
            msg = await self._receive(ws, rotate_at, ROTATE)
            if await self._dispatch(msg, on_event):
                raise _Reconnect("listen key expired")

    async def _dispatch(self, msg: StreamMessage, on_event: OnEvent) -> bool:
        """Emit an execution report; True if the server says the key expired."""
        if not len(msg.data):
            return False
        try:
            report = _report_decoder.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raw = bytes(msg.data)
            if b"listenKeyExpired" in raw:
                return True
            if b"executionReport" in raw and isinstance(exc, msgspec.ValidationError):
                _drop_report(msgspec_field(exc))
            else:
                log.debug("stream_event_skipped")
            return False
        if report.event_type not in (None, "executionReport"):
            return report.event_type == "listenKeyExpired"
        try:
            check_numbers(report, "data")
        except BadNumber as exc:
            _drop_report(str(exc), report)
            return False
        await _emit(on_event, report)
        return False

    async def _ping_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not ws.closed:
            await self.clock.sleep(self.ping_interval)
            try:
                await ws.ping()
            except Exception:  # connection gone; the reader notices
                return


def _decode_frame(data: str | bytes) -> StreamMessage | None:
    """A frame as a ``StreamMessage``; bare NaN/Infinity tokens are read as strings so the
    report's number check can name the field. None when unreadable even so."""
    try:
        return _msg_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        fixed = tolerant_json(data)
        if fixed is None:
            return None
        try:
            return _msg_decoder.decode(fixed)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None


def _drop_report(problem: str, report: ExecutionReport | None = None) -> None:
    """An execution report we cannot trust is dropped, never passed on and never fatal to
    the stream: the consumer's REST checks (open orders, history, user trades) are the
    backstop for the fill it may have announced."""
    ids = {} if report is None else {"order_id": report.order_id, "status": report.status}
    log.warning("stream_report_dropped", problem=f"user stream: {problem}", **ids)


async def _emit(on_event: OnEvent, event: StreamEvent) -> None:
    result = on_event(event)
    if inspect.isawaitable(result):
        await result
