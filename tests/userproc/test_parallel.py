"""A user's strategies side by side in its one process (``parallel_strategies``): both
tokens' OTOs are open at the same time, each strategy lands within one trade of its
target, a ``kill -9`` mid-run is recovered with no duplicate and nothing left open, and a
balance that covers one round trip at a time makes the strategies take turns instead of
fighting over it."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import msgspec

from protocol.exitcodes import Exit
from userproc.journal import Journal
from userproc.main import run_user

from .conftest import make_settings, make_spec
from .test_kill_restart import _spawn, _until

CREDIT = {"KOGE": Decimal(10) / Decimal("1.005"), "AOP": 4 * Decimal(10) / Decimal("1.005")}
TARGET = {"KOGE": Decimal(120), "AOP": Decimal(480)}


def _both(**kw):
    return [
        make_settings(
            strategy_id=t.lower(),
            target_token=t,
            target_volume=TARGET[t],
            single_trade_amount_usdt=Decimal(10),
            **kw,
        )
        for t in ("KOGE", "AOP")
    ]


def _side_by_side(spec):
    return msgspec.structs.replace(spec, parallel_strategies=True)


def _overlapped(orders: list[dict]) -> bool:
    """Some KOGE round trip and some AOP round trip were open at the same moment."""
    spans: dict[str, list[tuple[int, int]]] = {"KOGE": [], "AOP": []}
    for o in orders:
        if o["position"] == "OTO_WORKING":
            ends = [h.get("time_ms", 0) for h in o["history"]] + [o["created_ms"]]
            spans[o["token"]].append((o["created_ms"], max(ends)))
    return any(a0 < b1 and b0 < a1 for a0, a1 in spans["KOGE"] for b0, b1 in spans["AOP"])


async def _check_targets(sim, account: str = "u1") -> dict:
    acc = await sim.admin.account(account)
    assert acc["open_orders"] == 0
    for token, target in TARGET.items():
        final = Decimal(acc["volume_now"].get(token, "0"))
        assert target <= final < target + CREDIT[token], (token, final)
    return acc


async def test_both_strategies_trade_at_once_and_land_on_their_targets(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory(fill_delay=0.05) as sim:
        spec = _side_by_side(make_spec(sim, supervisor, tmp_path, _both()))
        assert await run_user(spec) == Exit.OK
        acc = await _check_targets(sim)
        assert _overlapped(acc["orders"])
        summary = await supervisor.summary()
        assert [s.reached for s in summary.strategies] == [True, True]


async def test_a_kill_mid_run_side_by_side_leaves_no_duplicate_and_nothing_open(
    sim_factory, supervisor, tmp_path
) -> None:
    jpath = tmp_path / "journals" / "user-u1.sqlite"
    async with sim_factory(fill_delay=0.1) as sim:
        engine = sim.sim
        spec = _side_by_side(make_spec(sim, supervisor, tmp_path, _both()))
        proc = await _spawn(spec, tmp_path / "c.log")

        def both_open() -> bool:
            acc = engine.accounts.get("u1")
            live = {o.token.symbol for o in (acc.orders if acc else ()) if o.is_open}
            return live == {"KOGE", "AOP"}

        await _until(both_open, 20)
        proc.kill()
        await proc.wait()
        proc = await _spawn(spec, tmp_path / "c.log")
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        acc = await _check_targets(sim)
        j = Journal(jpath)
        placed = [r.working_id for r in j._rows("kind='oto' AND placed=1")]
        assert j.open_trades() == []
        j.close()
        sim_otos = {o["order_id"] for o in acc["orders"] if o["position"] == "OTO_WORKING"}
        assert len(placed) == len(set(placed)) == acc["oto_count"] and set(placed) == sim_otos


async def test_a_balance_for_one_round_trip_makes_them_take_turns(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory(fill_delay=0.05) as sim:
        await sim.admin.set_balance("u1", "USDT", Decimal(15))  # one 10 USDT trade at a time
        # (min_balance_usdt off: 15 USDT would otherwise not be traded at all)
        both = _both(min_balance_usdt=Decimal(0))
        spec = _side_by_side(make_spec(sim, supervisor, tmp_path, both))
        assert await run_user(spec) == Exit.OK
        acc = await _check_targets(sim)
        assert [s.reached for s in (await supervisor.summary()).strategies] == [True, True]
        posts = sum(n for path, n in acc["requests"].items() if "oto-order/place" in path)
        assert posts - acc["oto_count"] == 1  # refused once; from then on they took turns
