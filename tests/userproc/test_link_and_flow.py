"""The supervisor link never stalls trading and coalesces progress; strategies run one
after another; a user already at target trades nothing; 5xx are retried a bounded number
of times; SIGTERM drains a real process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from decimal import Decimal

import zmq
import zmq.asyncio

from protocol import messages as m
from protocol.codec import decode_event, encode_command
from protocol.exitcodes import Exit
from userproc.lifecycle import Lifecycle, StopMode
from userproc.link import SupervisorLink
from userproc.main import run_user

from .conftest import FAST, make_settings, make_spec
from .test_kill_restart import _spawn


async def test_slow_supervisor_never_blocks_and_gets_the_latest_progress(tmp_path) -> None:
    endpoint = f"ipc://{tmp_path / 'late.ipc'}"
    ctx = zmq.asyncio.Context()
    link = SupervisorLink(ctx, endpoint, "u9", Lifecycle(), tuning=FAST)
    await link.start()  # nobody is listening yet
    for i in range(5000):  # far more than the socket's high-water mark
        for oid in ("1", "2", "3"):
            link.send(
                m.OrderUpdate(
                    user_id="u9",
                    strategy_id="s",
                    order_id=oid,
                    symbol="X",
                    side="BUY",
                    status="NEW",
                    filled_qty=Decimal(i),
                )
            )
    link.send(m.Summary(user_id="u9", exit_code=0, reason="bye"))
    assert len(link._outbox) <= 4  # coalesced: one slot per order + the summary
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(endpoint)
    latest: dict[str, Decimal] = {}
    got_summary = False
    async with asyncio.timeout(10):
        while not got_summary:
            _ident, data = await router.recv_multipart()
            msg = decode_event(data)
            if isinstance(msg, m.OrderUpdate):
                latest[msg.order_id] = msg.filled_qty
            got_summary = got_summary or isinstance(msg, m.Summary)
    assert latest == {"1": Decimal(4999), "2": Decimal(4999), "3": Decimal(4999)}
    await link.close(linger_seconds=0)
    router.close(linger=0)
    ctx.term()


async def test_strategies_run_one_after_another_and_done_users_trade_nothing(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        await sim.admin.set_volume("u1", "KOGE", Decimal(500))  # already at target
        koge = make_settings(strategy_id="koge", target_volume=Decimal(400))
        aop = make_settings(strategy_id="aop", target_token="AOP", target_volume=Decimal(300))
        code = await run_user(make_spec(sim, supervisor, tmp_path, [koge, aop]))
        assert code == Exit.OK
        acc = await sim.admin.account("u1")
        assert {o["token"] for o in acc["orders"]} == {"AOP"}
        summary = await supervisor.summary()
        assert [s.strategy_id for s in summary.strategies] == ["koge", "aop"]
        assert summary.strategies[0].trades == 0 and summary.strategies[0].reached
        assert summary.strategies[1].reached and summary.strategies[1].trades > 0


async def test_5xx_is_retried_then_reported_as_exchange_down(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        await sim.admin.set_faults(error_next=2, paths=["user-volume"])
        code = await run_user(
            make_spec(sim, supervisor, tmp_path, [make_settings(target_volume=Decimal(60))])
        )
        assert code == Exit.OK  # two failures, max_retry_attempts=2: recovered
        await sim.admin.set_faults(error_next=100, paths=["user-volume"])
        code = await run_user(
            make_spec(sim, supervisor, tmp_path, [make_settings(target_volume=Decimal(200))])
        )
        assert code == Exit.EXCHANGE_DOWN
        assert (await sim.admin.account("u1"))["open_orders"] == 0


async def test_sigterm_drains_a_real_process(sim_factory, supervisor, tmp_path) -> None:
    async with sim_factory(fill_delay=0.02) as sim:
        spec = make_spec(sim, supervisor, tmp_path, [make_settings(target_volume=Decimal(100000))])
        proc = await _spawn(spec, tmp_path / "child.log")
        await supervisor.wait_for(lambda x: isinstance(x, m.TradeDone), within=20)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == Exit.OK
        summary = await supervisor.wait_for(lambda x: isinstance(x, m.Summary))
        assert "SIGTERM" in summary.reason and summary.open_orders == 0
        acc = await sim.admin.account("u1")
        assert acc["open_orders"] == 0
        assert all(o["status"] == "FILLED" for o in acc["orders"])


async def test_update_settings_applies_from_the_next_batch(
    sim_factory, supervisor, tmp_path
) -> None:
    import msgspec

    async with sim_factory() as sim:
        st = make_settings(target_volume=Decimal(100000))
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [st])))
        await supervisor.wait_for(lambda x: isinstance(x, m.TradeDone))
        lowered = msgspec.structs.replace(st, target_volume=Decimal(1))
        await supervisor.send(m.UpdateSettings(settings=[lowered]))
        assert await asyncio.wait_for(run, 30) == Exit.OK
        summary = await supervisor.summary()
        assert summary.strategies[0].reached and summary.strategies[0].target == Decimal(1)
        assert (await sim.admin.account("u1"))["open_orders"] == 0


async def test_the_supervisor_going_away_is_noticed_at_once_not_by_heartbeats(tmp_path) -> None:
    """Its socket closes when the supervisor dies: that is a lost supervisor (stop now,
    SUPERVISOR_LOST) well before any heartbeat timeout (3 s here)."""
    endpoint = f"ipc://{tmp_path / 'sup.ipc'}"
    ctx = zmq.asyncio.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(endpoint)
    life = Lifecycle()
    link = SupervisorLink(ctx, endpoint, "u7", life, tuning=FAST)
    await link.start()
    async with asyncio.timeout(5):
        ident, data = await router.recv_multipart()
    hello = decode_event(data)
    assert isinstance(hello, m.Hello) and ident == b"u7" and hello.seq == 1
    assert not life.stopping()
    t0 = time.monotonic()
    router.close(linger=0)  # as the kernel does when the supervisor is killed
    assert await life.wait(None, StopMode.NOW, FAST.heartbeat_timeout)
    assert time.monotonic() - t0 < 1.0
    assert life.exit == Exit.SUPERVISOR_LOST and link.supervisor_lost
    await link.close(linger_seconds=0)
    ctx.term()


async def test_the_link_closes_at_once_while_pings_keep_coming(tmp_path) -> None:
    """A user process that finished its work exits: closing its link never hangs, even
    when a Ping lands in the same instant as the close (Python 3.11's ``wait_for`` then
    swallows the cancellation, and the heartbeat watchdog looped on: a drained user kept
    alive until the supervisor killed it)."""
    endpoint = f"ipc://{tmp_path / 'pings.ipc'}"
    ctx = zmq.asyncio.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(endpoint)
    ping = encode_command(m.Ping(at=1.0))
    peers: set[bytes] = set()
    joined = asyncio.Event()

    async def supervisor() -> None:  # Pings to every peer, as fast as they go out
        while True:
            while await router.poll(0, zmq.POLLIN):
                ident, _ = await router.recv_multipart()
                peers.add(ident)
                joined.set()
            for ident in list(peers):
                with contextlib.suppress(zmq.ZMQError):
                    await router.send_multipart([ident, ping], flags=zmq.NOBLOCK)
            await asyncio.sleep(0)

    pinger = asyncio.create_task(supervisor())
    slow: list[float] = []
    hung: list[str] = []
    try:
        for i in range(60):
            link = SupervisorLink(ctx, endpoint, f"u{i}", Lifecycle(), tuning=FAST)
            await link.start()
            async with asyncio.timeout(5):
                while f"u{i}".encode() not in peers:
                    joined.clear()
                    await joined.wait()
            for _ in range(i % 7):  # land the close at different points of the Ping stream
                await asyncio.sleep(0)
            t0 = time.monotonic()
            try:
                async with asyncio.timeout(5):
                    await link.close(linger_seconds=0)
            except TimeoutError:
                hung.append(f"u{i}")
                break
            slow += [round(time.monotonic() - t0, 2)] if time.monotonic() - t0 > 1.0 else []
            peers.discard(f"u{i}".encode())
    finally:
        pinger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pinger
        ctx.destroy(linger=0)
    assert hung == [] and slow == []
