"""The ZeroMQ link to the supervisor (DEALER, routing id = user id, LINGER short).

Sending never blocks trading: a message goes out with NOBLOCK; if the socket would block
(slow or absent supervisor) it waits in an outbox that a background task drains, and
while it waits progress is coalesced: only the latest ``OrderUpdate`` per order and the
latest ``VolumeChecked``/``BatchPlanned`` per strategy are kept. Every event carries this
process's own increasing ``seq``; ``Hello`` goes out on connect and on every reconnect
(seen through the socket monitor), because a restarted supervisor lost what was queued.

Incoming: ``Drain``/``StopNow`` go to the lifecycle (a repeated Drain is the same drain),
``UpdateSettings`` is kept for the runner to apply from the next batch. A lost supervisor
is noticed at once when the socket's peer goes away (the monitor's disconnect event: the
supervisor died and the kernel closed its end), and in any case after
``heartbeat_timeout`` without a ``Ping``; either way the lifecycle stops as "now" with
Exit.SUPERVISOR_LOST. (A disconnect counts only if the link does not come back within
``RECONNECT_GRACE``; a missed heartbeat only if no message waits unread on the socket: a
process starved of CPU is not a process whose supervisor died.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import OrderedDict
from typing import Any, cast

import structlog
import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from config.settings import EffectiveSettings
from exchange.clock import SYSTEM_CLOCK, Clock
from protocol import messages as m
from protocol.codec import ProtocolError, decode_command, encode_event
from userproc.lifecycle import Lifecycle
from userproc.teardown import TEARDOWN_SECONDS, cancel_and_wait
from userproc.tuning import DEFAULT_TUNING, Tuning

log = structlog.get_logger(__name__)
RECONNECT_GRACE = 0.5  # seconds a dropped link may take to come back before it counts
_POLLIN, _POLLOUT = int(zmq.POLLIN), int(zmq.POLLOUT)  # plain ints: IntFlag math is slow


def _coalesce_key(msg: m.Event, seq: int) -> tuple[Any, ...]:
    if isinstance(msg, m.OrderUpdate):
        return ("order", msg.order_id)
    if isinstance(msg, m.VolumeChecked):
        return ("volume", msg.strategy_id)
    if isinstance(msg, m.BatchPlanned):
        return ("plan", msg.strategy_id)
    return ("seq", seq)


class SupervisorLink:
    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        endpoint: str,
        user_id: str,
        life: Lifecycle,
        *,
        restarts: int = 0,
        clock: Clock = SYSTEM_CLOCK,
        tuning: Tuning = DEFAULT_TUNING,
    ) -> None:
        self.user_id = user_id
        self.endpoint = endpoint
        self.life = life
        self.clock = clock
        self.tuning = tuning
        self.restarts = restarts
        self.seq = 0
        self.pending_settings: list[EffectiveSettings] | None = None
        self.supervisor_lost = False
        self._outbox: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._outbox_event = asyncio.Event()
        self._drained = asyncio.Event()
        self._last_ping = clock.monotonic()
        self._ping_event = asyncio.Event()
        self.trade_until: float | None = None  # a pool's lease limit (Ping.trade_until)
        self.spent_elsewhere: m.SpentElsewhere | None = None  # a pool's (Ping.spent_elsewhere)
        self._lease_event = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._sock = ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.ROUTING_ID, user_id.encode())
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, 1000)
        self._monitor = self._sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        self._closed = False
        self._connected = asyncio.Event()

    async def start(self) -> None:
        self._sock.connect(self.endpoint)
        self._send_hello()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._recv_loop()),
            loop.create_task(self._flush_loop()),
            loop.create_task(self._monitor_loop()),
        ]
        if self.tuning.heartbeat_enabled:
            self._tasks.append(loop.create_task(self._watchdog()))

    # ------------------------------------------------------------------ sending
    def _send_hello(self) -> None:
        self.send(m.Hello(user_id=self.user_id, pid=os.getpid()))

    def send(self, msg: m.Event) -> None:
        """Queue-free fast path; never awaits, never raises on a slow supervisor."""
        if self._closed:
            return
        self.seq += 1
        msg.seq = self.seq
        msg.user_id = self.user_id
        if not msg.at:
            msg.at = self.clock.time()
        data = encode_event(msg)
        key = _coalesce_key(msg, self.seq)
        if not self._outbox and self._try_send(data):
            return
        self._outbox[key] = data  # a coalesced key keeps its slot, with the newest value
        self._drained.clear()
        self._outbox_event.set()

    def _try_send(self, data: bytes) -> bool:
        """Send now if the socket can take it; never waits. (zmq.asyncio reports a full
        queue through the returned future, so writability is checked first.)"""
        sock: Any = self._sock  # zmq.asyncio's stubs type send() as a plain awaitable
        try:
            if not int(sock.get(zmq.EVENTS)) & _POLLOUT:
                return False
            fut = sock.send(data, flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.warning("link_send_failed", error=str(exc))
            return False
        if fut.done():
            return fut.exception() is None
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        return True

    async def _flush_loop(self) -> None:
        while True:
            await self._outbox_event.wait()
            while self._outbox:
                key, data = next(iter(self._outbox.items()))
                if not self._try_send(data):
                    await cast(Any, self._sock).poll(timeout=200, flags=zmq.POLLOUT)
                    continue
                if self._outbox.get(key) is data:
                    del self._outbox[key]
            self._outbox_event.clear()
            self._drained.set()

    async def flush(self, within: float) -> bool:
        """Wait (bounded) until the outbox is empty; True if it is."""
        if self._outbox and within > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await self._drained.wait()
        return not self._outbox

    # ------------------------------------------------------------------ receiving
    async def _recv_loop(self) -> None:
        while True:
            frames = await self._sock.recv_multipart()
            try:
                msg = decode_command(frames[-1])
            except ProtocolError as exc:
                log.warning("link_bad_message", error=str(exc))
                continue
            self._last_ping = self.clock.monotonic()  # any message proves the supervisor lives
            if isinstance(msg, m.Ping):
                self._ping_event.set()
                if msg.spent_elsewhere is not None:
                    self.spent_elsewhere = msg.spent_elsewhere
                if msg.trade_until is not None:
                    if self.trade_until is None:  # a node of a pool: guard its lease
                        loop = asyncio.get_running_loop()
                        self._tasks.append(loop.create_task(self._lease_guard()))
                    self.trade_until = msg.trade_until
                    self._lease_event.set()
            elif isinstance(msg, m.Drain):
                self.life.drain("supervisor asked to drain", strategy=msg.strategy_id)
            elif isinstance(msg, m.StopNow):
                self.life.now("supervisor asked to stop now", strategy=msg.strategy_id)
            elif isinstance(msg, m.UpdateSettings):
                self.pending_settings = msg.settings
                log.info("settings_update_received", strategies=len(msg.settings))

    async def _monitor_loop(self) -> None:
        first = True
        while True:
            frames = await self._monitor.recv_multipart()
            evt = parse_monitor_message(frames)
            if evt["event"] == zmq.EVENT_CONNECTED:
                self._connected.set()
                if not first:
                    log.info("supervisor_reconnected")
                    self._send_hello()
                first = False
            elif evt["event"] == zmq.EVENT_DISCONNECTED and not self._closed:
                self._connected.clear()
                self._tasks.append(asyncio.get_running_loop().create_task(self._lost_if_gone()))

    async def _lost_if_gone(self) -> None:
        """The supervisor closed its end: it died (the kernel closed its socket), unless
        the link comes back at once (ZeroMQ reconnects within ``RECONNECT_GRACE``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RECONNECT_GRACE):
                await self._connected.wait()
        if not self._connected.is_set() and not self._closed:
            log.warning("supervisor_lost", how="event socket closed by the supervisor")
            self.supervisor_lost = True
            self.life.supervisor_lost("its event socket closed")

    async def _watchdog(self) -> None:
        timeout = self.tuning.heartbeat_timeout
        while True:
            left = self._last_ping + timeout - self.clock.monotonic()
            if left <= 0 and self._readable():  # starved of CPU, not of Pings: read them
                await asyncio.sleep(0)
                continue
            if left <= 0:
                log.warning("supervisor_lost", seconds_without_ping=timeout)
                self.supervisor_lost = True
                self.life.supervisor_lost(f"no heartbeat for {timeout:g} s")
                return
            self._ping_event.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._ping_event.wait()

    async def _lease_guard(self) -> None:
        """Past ``trade_until`` with no Ping moving it (the supervisor stalled, or its
        lease on this user can no longer be renewed in time): stop now (cancel, sell),
        before another node may take the user over."""
        while True:
            assert self.trade_until is not None
            left = self.trade_until - self.clock.monotonic()
            if left <= 0:
                log.warning("lease_limit_reached", action="stopping now")
                self.life.now("its node could not renew the lease on this user in time")
                return
            self._lease_event.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._lease_event.wait()

    def _readable(self) -> bool:
        """Messages wait on the socket (``_recv_loop`` has not run yet)."""
        try:
            return bool(int(cast(Any, self._sock).get(zmq.EVENTS)) & _POLLIN)
        except zmq.ZMQError:
            return False

    async def close(self, linger_seconds: float = 1.0) -> None:
        await self.flush(linger_seconds)
        self._closed = True
        await cancel_and_wait(self._tasks, TEARDOWN_SECONDS, "supervisor link")
        with contextlib.suppress(Exception):
            self._sock.disable_monitor()
        self._monitor.close(linger=0)
        self._sock.close(linger=int(linger_seconds * 1000))
