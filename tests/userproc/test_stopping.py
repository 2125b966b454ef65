"""Stopping: the volatility guard and the cost cap stop buying, drain and stop-now leave
nothing open, a lost supervisor is noticed within 5 seconds, and a POST whose reply is
lost is looked up instead of being sent twice."""

from __future__ import annotations

import asyncio
import signal
import time
from decimal import Decimal

import msgspec

from protocol import messages as m
from protocol.exitcodes import Exit
from userproc.journal import Journal
from userproc.main import run_user

from .conftest import FAST, make_settings, make_spec


def _held(acc: dict, asset: str) -> Decimal:
    b = acc["balances"].get(asset, {})
    return Decimal(b.get("free", "0")) + Decimal(b.get("locked", "0"))


async def test_volatility_guard_stops_buying(sim_factory, supervisor, tmp_path) -> None:
    async with sim_factory() as sim:
        st = make_settings(
            target_volume=Decimal(100000), max_price_volatility_percentage=Decimal(1)
        )
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [st])))
        await supervisor.wait_for(lambda x: isinstance(x, m.TradeDone))
        await sim.admin.set_price("KOGE", Decimal("60"))  # +25%
        await supervisor.wait_for(
            lambda x: isinstance(x, m.PhaseChanged) and x.phase == "waiting_price"
        )
        placed = (await sim.admin.account("u1"))["oto_count"]
        await supervisor.send(m.StopNow())
        assert await asyncio.wait_for(run, 10) == Exit.OK
        acc = await sim.admin.account("u1")
        assert acc["oto_count"] == placed and acc["open_orders"] == 0


async def test_cost_cap_stops_the_user(sim_factory, supervisor, tmp_path) -> None:
    async with sim_factory() as sim:
        st = make_settings(target_volume=Decimal(100000), max_daily_cost_usdt=Decimal("0.0001"))
        code = await run_user(make_spec(sim, supervisor, tmp_path, [st]))
        assert code == Exit.COST_CAP
        acc = await sim.admin.account("u1")
        assert acc["oto_count"] == 1 and acc["open_orders"] == 0
        assert (await supervisor.summary()).cost_today >= Decimal("0.0001")


async def test_drain_finishes_the_round_trip_then_exits(sim_factory, supervisor, tmp_path) -> None:
    async with sim_factory(fill_delay=0.05) as sim:
        st = make_settings(target_volume=Decimal(100000))
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [st])))
        await supervisor.wait_for(lambda x: isinstance(x, m.TradeDone))
        await supervisor.send(m.Drain())
        assert await asyncio.wait_for(run, 10) == Exit.OK
        acc = await sim.admin.account("u1")
        assert acc["open_orders"] == 0
        assert _held(acc, "ALPHA_22") < Decimal("0.0001") * acc["oto_count"]
        assert all(o["status"] == "FILLED" for o in acc["orders"])  # finished, not cut short
        await supervisor.summary()
        assert any(p.phase == "draining" for p in supervisor.of(m.PhaseChanged))


async def test_a_hung_supervisor_stops_trading_once_pings_are_missing(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory(fill_delay=0.02) as sim:
        tuning = msgspec.structs.replace(FAST, heartbeat_timeout=1.0)
        st = make_settings(target_volume=Decimal(100000))
        run = asyncio.create_task(
            run_user(make_spec(sim, supervisor, tmp_path, [st], tuning=tuning))
        )
        await supervisor.wait_for(lambda x: isinstance(x, m.TradeDone))
        supervisor.pinging = False
        t0 = time.monotonic()
        assert await asyncio.wait_for(run, 5) == Exit.SUPERVISOR_LOST
        assert time.monotonic() - t0 < 5
        acc = await sim.admin.account("u1")
        assert acc["open_orders"] == 0
        assert _held(acc, "ALPHA_22") < Decimal("0.0001") * acc["oto_count"]


async def test_lost_place_reply_is_looked_up_not_resent(sim_factory, supervisor, tmp_path) -> None:
    async with sim_factory() as sim:
        await sim.admin.set_faults(
            hang_next=1, hang_after=True, hang_seconds=1.0, paths=["oto-order/place"]
        )
        st = make_settings(target_volume=Decimal(90))
        spec = make_spec(sim, supervisor, tmp_path, [st])
        spec = msgspec.structs.replace(
            spec, exchange=msgspec.structs.replace(spec.exchange, request_timeout_seconds=0.3)
        )
        code = await run_user(spec)
        assert code == Exit.OK
        acc = await sim.admin.account("u1")
        j = Journal(tmp_path / "journals" / "user-u1.sqlite")
        placed = [r for r in j._rows("placed=1 AND kind='oto'")]
        j.close()
        assert acc["oto_count"] == len(placed)
        ids = sorted(r.working_id for r in placed)
        assert len(set(ids)) == len(ids)
        sim_ids = sorted(o["order_id"] for o in acc["orders"] if o["position"] == "OTO_WORKING")
        assert ids == sim_ids
        assert acc["open_orders"] == 0


def _hanging_sell(**kw) -> object:
    # the OTO sell sits 5% above the buy: it will not fill within the 30 s timeout
    base = dict(
        sell_profit_percentage=Decimal("-5"),
        order_timeout_seconds=30.0,
        stop_grace_seconds=0.3,
        target_volume=Decimal(1000),
    )
    base.update(kw)
    return make_settings(**base)


async def _stop_while_sell_hangs(
    sim_factory, supervisor, tmp_path, cmd: m.Command, *, grace: float = 0.3, first=None
) -> dict:
    async with sim_factory() as sim:
        st = _hanging_sell(stop_grace_seconds=grace)
        settings = [first, st] if first is not None else [st]
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, settings)))
        await supervisor.wait_for(
            lambda x: (
                isinstance(x, m.OrderUpdate)
                and x.side == "SELL"
                and x.status == "NEW"
                and x.strategy_id == st.strategy_id
            )
        )
        t0 = time.monotonic()
        await supervisor.send(cmd)
        assert await asyncio.wait_for(run, 10) == Exit.OK
        took = time.monotonic() - t0
        acc = await sim.admin.account("u1")
        assert acc["oto_count"] == len(settings) and acc["open_orders"] == 0
        assert _held(acc, "ALPHA_22") < Decimal("0.0001") * len(settings)
        return {"took": took, "summary": await supervisor.summary()}


async def test_drain_past_the_grace_period_cancels_and_sells(
    sim_factory, supervisor, tmp_path
) -> None:
    out = await _stop_while_sell_hangs(sim_factory, supervisor, tmp_path, m.Drain())
    assert 0.3 <= out["took"] < 5  # waited the grace, not the 30 s order timeout
    assert not out["summary"].leftovers


async def test_stop_now_cancels_and_sells_at_once(sim_factory, supervisor, tmp_path) -> None:
    # a 10 s grace: "now" must not wait for it the way a drain would
    out = await _stop_while_sell_hangs(sim_factory, supervisor, tmp_path, m.StopNow(), grace=10.0)
    assert out["took"] < 2
    assert not out["summary"].leftovers


async def test_the_running_strategys_grace_is_in_force(sim_factory, supervisor, tmp_path) -> None:
    """The first strategy allows 30 s, the second (running when the drain comes) 0.3 s."""
    first = make_settings(strategy_id="first", target_volume=Decimal(20), stop_grace_seconds=30.0)
    out = await _stop_while_sell_hangs(
        sim_factory, supervisor, tmp_path, m.Drain(), grace=0.3, first=first
    )
    assert 0.3 <= out["took"] < 5
    assert [s.strategy_id for s in out["summary"].strategies] == ["first", "koge"]


async def test_the_wait_between_trades_wakes_at_once_on_drain(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        st = make_settings(target_volume=Decimal(1000), trade_interval_seconds=30.0)
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [st])))
        await supervisor.wait_for(lambda x: isinstance(x, m.PhaseChanged) and x.phase == "interval")
        t0 = time.monotonic()
        await supervisor.send(m.Drain())
        assert await asyncio.wait_for(run, 10) == Exit.OK
        assert time.monotonic() - t0 < 2
        acc = await sim.admin.account("u1")
        assert acc["oto_count"] == 1 and acc["open_orders"] == 0
        assert _held(acc, "ALPHA_22") < Decimal("0.0001")


async def test_a_long_retry_after_ends_at_once_on_stop_now(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        await sim.admin.set_faults(rate_limit_next=1000, retry_after=30, paths=["user-volume"])
        run = asyncio.create_task(
            run_user(make_spec(sim, supervisor, tmp_path, [make_settings(stop_grace_seconds=30)]))
        )
        await supervisor.wait_for(
            lambda x: isinstance(x, m.ErrorReport) and x.kind == "rate_limited"
        )
        t0 = time.monotonic()
        await supervisor.send(m.StopNow())
        assert await asyncio.wait_for(run, 10) == Exit.OK
        assert time.monotonic() - t0 < 2
        acc = await sim.admin.account("u1")
        assert acc["oto_count"] == 0 and acc["open_orders"] == 0
        assert (await supervisor.summary()).open_orders == 0


async def test_two_sigterms_stop_a_real_process_now(sim_factory, supervisor, tmp_path) -> None:
    """First SIGTERM = drain (with a 10 s grace and a sell that will not fill), the second
    = now: cancelled and sold at once, long before the grace would have run out."""
    from .test_kill_restart import _spawn

    async with sim_factory() as sim:
        st = _hanging_sell(stop_grace_seconds=10.0)
        proc = await _spawn(make_spec(sim, supervisor, tmp_path, [st]), tmp_path / "child.log")
        await supervisor.wait_for(
            lambda x: isinstance(x, m.OrderUpdate) and x.side == "SELL" and x.status == "NEW",
            within=20,
        )
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await supervisor.wait_for(lambda x: isinstance(x, m.PhaseChanged) and x.phase == "draining")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == Exit.OK
        assert time.monotonic() - t0 < 3
        acc = await sim.admin.account("u1")
        assert acc["oto_count"] == 1 and acc["open_orders"] == 0
        assert _held(acc, "ALPHA_22") < Decimal("0.0001")
        summary = await supervisor.summary()
        assert summary.open_orders == 0 and not summary.leftovers


async def test_stop_now_during_an_imposed_wait_still_sells_what_the_trade_bought(
    sim_factory, supervisor, tmp_path
) -> None:
    """The sell times out, its cancel is answered 429 with a 30 s Retry-After, and StopNow
    comes during that wait: the process must not leave with the round trip's tokens
    unsold and unreported; it finishes the trade on the way out."""
    async with sim_factory() as sim:
        await sim.admin.set_faults(rate_limit_next=1, retry_after=30, paths=["order/cancel"])
        st = _hanging_sell(order_timeout_seconds=0.3, stop_grace_seconds=10.0)
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [st])))
        await supervisor.wait_for(
            lambda x: isinstance(x, m.ErrorReport) and x.kind == "rate_limited"
        )
        acc = await sim.admin.account("u1")
        assert _held(acc, "ALPHA_22") > Decimal("0.1")  # the buy filled: tokens at stake
        t0 = time.monotonic()
        await supervisor.send(m.StopNow())
        assert await asyncio.wait_for(run, 20) == Exit.OK
        assert time.monotonic() - t0 < 5
        acc = await sim.admin.account("u1")
        assert acc["open_orders"] == 0
        assert _held(acc, "ALPHA_22") < Decimal("0.0001")  # sold, only dust left
        summary = await supervisor.summary()
        assert summary.open_orders == 0 and not summary.leftovers


async def test_a_drain_while_the_ticker_is_awaited_places_no_order(
    sim_factory, supervisor, tmp_path
) -> None:
    """The runner is about to price its first round trip (the ticker reply is held open)
    when the drain comes: once the reply is released, no intent is recorded and no OTO
    is sent (it would only be cancelled again: cost for no volume)."""
    async with sim_factory() as sim:
        await sim.admin.set_faults(hold=True, paths=["alpha-trade/ticker"])
        st = make_settings(target_volume=Decimal(1000))
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [st])))
        await asyncio.wait_for(sim.sim.hold_seen.wait(), 10)
        await supervisor.send(m.Drain())
        await supervisor.wait_for(lambda x: isinstance(x, m.PhaseChanged) and x.phase == "draining")
        await sim.admin.set_faults(hold=False)
        assert await asyncio.wait_for(run, 10) == Exit.OK
        assert (await sim.admin.account("u1"))["oto_count"] == 0
        j = Journal(tmp_path / "journals" / "user-u1.sqlite")
        assert j._rows("1=1") == []  # not even an intent
        j.close()
        assert "drain" in (await supervisor.summary()).reason


async def test_a_repeated_drain_is_the_same_drain(sim_factory, supervisor, tmp_path) -> None:
    """The supervisor re-sends Drain with its heartbeats: the round trip in progress still
    finishes at its planned prices (the sell fills after 1 s), nothing is cancelled."""
    async with sim_factory() as sim:
        st = make_settings(target_volume=Decimal(1000), stop_grace_seconds=30.0)
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [st])))
        await supervisor.wait_for(lambda x: isinstance(x, m.TradeDone))
        await sim.admin.set_config(fill_delay=1.0)
        seen = {u.order_id for u in supervisor.of(m.OrderUpdate)}
        await supervisor.wait_for(  # a buy placed after the change: its sell takes 1 s
            lambda x: isinstance(x, m.OrderUpdate) and x.side == "BUY" and x.order_id not in seen
        )
        for _ in range(10):
            await supervisor.send(m.Drain())
        assert await asyncio.wait_for(run, 20) == Exit.OK
        acc = await sim.admin.account("u1")
        assert acc["open_orders"] == 0
        assert all(o["status"] == "FILLED" for o in acc["orders"]), [
            (o["side"], o["status"]) for o in acc["orders"]
        ]
        assert not any(p.phase == "stopping" for p in supervisor.of(m.PhaseChanged))


async def test_stop_now_of_one_strategy_during_an_imposed_wait_leaves_the_next_one_to_run(
    sim_factory, supervisor, tmp_path
) -> None:
    """StopNow for one strategy while the exchange makes it wait (Retry-After 30 s) ends
    that strategy at once; the user's next strategy still runs to its target (a stop is
    caught where the strategy's loop begins, not by the whole process)."""
    async with sim_factory() as sim:
        await sim.admin.set_faults(rate_limit_next=1000, retry_after=30, paths=["user-volume"])
        koge = make_settings(stop_grace_seconds=30)
        aop = make_settings(strategy_id="aop", target_token="AOP", target_volume=Decimal(60))
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [koge, aop])))
        await supervisor.wait_for(
            lambda x: isinstance(x, m.ErrorReport) and x.kind == "rate_limited"
        )
        await sim.admin.set_faults(rate_limit_next=0)  # koge sleeps out its 30 s meanwhile
        t0 = time.monotonic()
        await supervisor.send(m.StopNow(strategy_id="koge"))
        assert await asyncio.wait_for(run, 20) == Exit.OK
        assert time.monotonic() - t0 < 15
        summary = await supervisor.summary()
        by_id = {s.strategy_id: s for s in summary.strategies}
        assert not by_id["koge"].reached and by_id["koge"].trades == 0
        assert by_id["aop"].reached and summary.reason == "target reached"
        acc = await sim.admin.account("u1")
        assert acc["open_orders"] == 0 and Decimal(acc["volume_now"]["AOP"]) >= 60
