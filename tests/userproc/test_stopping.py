"""Stopping: the volatility guard and the cost cap stop buying, drain and stop-now leave
nothing open, a lost supervisor is noticed within 5 seconds, and a POST whose reply is
lost is looked up instead of being sent twice."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import msgspec

from protocol import messages as m
from protocol.exitcodes import Exit
from userproc.journal import Journal
from userproc.main import run_user
from userproc.tuning import DEFAULT_TUNING

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


async def test_supervisor_loss_stops_trading_within_five_seconds(
    sim_factory, supervisor, tmp_path
) -> None:
    assert DEFAULT_TUNING.heartbeat_timeout < 5
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


async def _stop_while_sell_hangs(sim_factory, supervisor, tmp_path, cmd: m.Command) -> dict:
    async with sim_factory() as sim:
        # the OTO sell sits 5% above the buy: it will not fill within the 30 s timeout
        st = make_settings(
            sell_profit_percentage=Decimal("-5"),
            order_timeout_seconds=30.0,
            stop_grace_seconds=0.3,
            target_volume=Decimal(1000),
        )
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [st])))
        await supervisor.wait_for(
            lambda x: isinstance(x, m.OrderUpdate) and x.side == "SELL" and x.status == "NEW"
        )
        t0 = time.monotonic()
        await supervisor.send(cmd)
        assert await asyncio.wait_for(run, 10) == Exit.OK
        took = time.monotonic() - t0
        acc = await sim.admin.account("u1")
        assert acc["oto_count"] == 1 and acc["open_orders"] == 0
        assert _held(acc, "ALPHA_22") < Decimal("0.0001")
        return {"took": took, "summary": await supervisor.summary()}


async def test_drain_past_the_grace_period_cancels_and_sells(
    sim_factory, supervisor, tmp_path
) -> None:
    out = await _stop_while_sell_hangs(sim_factory, supervisor, tmp_path, m.Drain())
    assert 0.3 <= out["took"] < 5  # waited the grace, not the 30 s order timeout
    assert not out["summary"].leftovers


async def test_stop_now_cancels_and_sells_at_once(sim_factory, supervisor, tmp_path) -> None:
    out = await _stop_while_sell_hangs(sim_factory, supervisor, tmp_path, m.StopNow())
    assert out["took"] < 3
    assert not out["summary"].leftovers
