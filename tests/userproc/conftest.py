"""Fixtures for user-process tests: the simulated exchange over real sockets, and a real
ZeroMQ ROUTER standing in for the supervisor (it answers Hello with Pings and records
every message)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from config.settings import EffectiveSettings, ExchangeSettings
from exchange.sim.testing import SimHarness
from protocol import messages as m
from protocol.codec import decode_event, encode_command
from userproc.spec import UserSpec
from userproc.tuning import Tuning

FAST = Tuning(
    heartbeat_timeout=3.0,
    stream_connect_timeout=5.0,
    rest_check_seconds=0.5,
    stream_initial_backoff=0.02,
    stream_max_backoff=0.1,
    volatility_window_seconds=5.0,
    volatility_wait_seconds=0.05,
    settle_poll_seconds=0.02,
    lookup_attempts=2,
    lookup_delay_seconds=0.02,
    post_land_margin_seconds=0.05,
    leftover_sell_timeout_seconds=0.3,
)


class FakeSupervisor:
    """A ROUTER on an ipc socket: records messages, pings every ``ping_every`` seconds."""

    def __init__(self, endpoint: str, ping_every: float = 0.2) -> None:
        self.endpoint = endpoint
        self.ping_every = ping_every
        self.ctx = zmq.asyncio.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted child reuses its id
        self.sock.bind(endpoint)
        self.messages: list[m.Msg] = []
        self.peers: set[bytes] = set()
        self.pinging = True
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._recv()), asyncio.create_task(self._ping())]

    async def _recv(self) -> None:
        while True:
            ident, data = await self.sock.recv_multipart()
            self.peers.add(ident)
            self.messages.append(decode_event(data))
            self._changed.set()

    async def _ping(self) -> None:
        while True:
            if self.pinging:
                for p in list(self.peers):
                    with contextlib.suppress(zmq.Again):
                        await self.sock.send_multipart(
                            [p, encode_command(m.Ping())], flags=zmq.NOBLOCK
                        )
            await asyncio.sleep(self.ping_every)

    async def send(self, cmd: m.Command) -> None:
        for p in list(self.peers):
            await self.sock.send_multipart([p, encode_command(cmd)])

    def of(self, kind: type) -> list[Any]:
        return [x for x in self.messages if isinstance(x, kind)]

    async def wait_for(self, pred, within: float = 10.0) -> Any:
        async def _loop():
            while True:
                for x in self.messages:
                    if pred(x):
                        return x
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(_loop(), within)

    async def summary(self, within: float = 10.0) -> m.Summary:
        """The last message of a user process (it may still be in flight when run_user
        has returned)."""
        return await self.wait_for(lambda x: isinstance(x, m.Summary), within)

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.sock.close(linger=0)
        self.ctx.term()


@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[FakeSupervisor]:
    sup = FakeSupervisor(f"ipc://{tmp_path / 'events.ipc'}")
    await sup.start()
    yield sup
    await sup.close()


def make_settings(**kw: Any) -> EffectiveSettings:
    base: dict[str, Any] = dict(
        strategy_id="koge",
        strategy_name="KOGE test",
        user_id="u1",
        target_token="KOGE",
        target_volume=Decimal(300),
        single_trade_amount_usdt=Decimal(30),
        trade_interval_seconds=0.0,
        buy_offset_percentage=Decimal("0.5"),
        sell_profit_percentage=Decimal("1.0"),
        order_timeout_seconds=1.0,
        volume_check_delay_seconds=0.15,
        max_retry_attempts=2,
        retry_delay_seconds=0.01,
        stop_grace_seconds=2.0,
    )
    base.update(kw)
    return EffectiveSettings(**base)


def make_spec(
    sim: SimHarness,
    sup: FakeSupervisor,
    tmp_path: Path,
    settings: list[EffectiveSettings],
    *,
    user: str = "u1",
    tuning: Tuning = FAST,
) -> UserSpec:
    return UserSpec(
        user_id=user,
        settings=settings,
        credentials=sim.credentials(user),
        exchange=ExchangeSettings(
            base_url=sim.base_url, ws_url=sim.ws_url, request_timeout_seconds=2.0
        ),
        journal_path=str(tmp_path / "journals" / f"user-{user}.sqlite"),
        events_endpoint=sup.endpoint,
        tuning=tuning,
    )


@pytest.fixture
def sim_factory():
    """``async with sim_factory(**opts) as sim`` with calm defaults for tests."""

    def _make(**opts: Any) -> SimHarness:
        opts.setdefault("fill_delay", 0)
        opts.setdefault("seed", 7)
        return SimHarness(**opts)

    return _make
