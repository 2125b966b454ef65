"""REST calls per round trip: in steady state a round trip costs the exchange one request
(the OTO); fills, quote and fees come from the user stream's reports and the next buy is
priced from our own last fill. When reports are lost the figures still come out exact,
from REST user trades."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal

import msgspec

from protocol import messages as m
from protocol.exitcodes import Exit
from userproc.main import run_user

from .conftest import FAST, make_settings, make_spec
from .test_kill_restart import _spawn

START_USDT = Decimal(10000)


def _journal_fills(path) -> dict[str, tuple[Decimal, Decimal]]:
    """working order id -> (buy_qty, buy_quote) as the journal recorded them, and the
    same for the OTO sells under their pending ids."""
    db = sqlite3.connect(path)
    try:
        out = {}
        for w, p, bq, bz, sq, sz in db.execute(
            "SELECT working_id, pending_id, buy_qty, buy_quote, sell_qty, sell_quote"
            " FROM trades WHERE kind='oto' AND placed=1"
        ):
            out[w] = (Decimal(bq or 0), Decimal(bz or 0))
            out[p] = (Decimal(sq or 0), Decimal(sz or 0))
        return out
    finally:
        db.close()


def _exact_against_sim(acc: dict, journal_path) -> None:
    """Every OTO leg's quantity and quote in the journal is the exchange's own."""
    rec = _journal_fills(journal_path)
    legs = [o for o in acc["orders"] if o["position"] in ("OTO_WORKING", "OTO_PENDING")]
    assert legs
    for o in legs:
        assert rec[o["order_id"]] == (Decimal(o["executed_qty"]), Decimal(o["cum_quote"])), o[
            "order_id"
        ]


async def test_steady_state_round_trip_costs_at_most_two_rest_calls(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        # ~40 round trips of 30 USDT in a real user process
        st = make_settings(target_volume=Decimal(1190))
        spec = make_spec(sim, supervisor, tmp_path, [st])
        proc = await _spawn(spec, tmp_path / "child.log")
        assert await asyncio.wait_for(proc.wait(), 60) == Exit.OK
        summary = await supervisor.summary()
        acc = await sim.admin.account("u1")
        n = acc["oto_count"]
        assert n >= 40 and acc["open_orders"] == 0
        req = acc["requests"]
        per_trip = {path.rsplit("/", 1)[-1]: round(c / n, 3) for path, c in req.items()}
        total = sum(req.values())
        # everything, setup and volume reads included, stays within the bar
        assert total <= 2 * n, per_trip
        # and the round trips themselves: the OTO, no user-trades look-ups, a ticker
        # only when our own fill price is stale (the first buy of the run); besides them,
        # the start (listen key, exchange info, open orders and today's history to check
        # the journal against), one balance read (min_balance_usdt: 10,000 USDT leave room
        # for the whole target, so it is not read again before later batches) and the
        # strategy's end (the wallet and one sell, when the round trips' dust adds up to
        # a sellable amount)
        assert len(supervisor.of(m.BatchPlanned)) > 1
        assert req.get("/bapi/asset/v2/private/asset-service/wallet/asset") == 1
        trading = {k: v for k, v in req.items() if "user-volume" not in k and "token" not in k}
        assert sum(trading.values()) - n - 1 <= 7, per_trip
        assert not any("get-user-trades" in k for k in req), per_trip
        # with no request for them, the figures are still the exchange's to the last digit
        spent = START_USDT - Decimal(acc["balances"]["USDT"]["free"])
        assert summary.cost_today == spent
        _exact_against_sim(acc, spec.journal_path)


async def test_dropped_stream_events_still_give_exact_fills(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        # a third of the reports never arrive; fills come in two parts, so a lost report
        # in the middle of an order shows as a jump in its cumulative quantity
        await sim.admin.set_faults(drop_events=0.33, partial_fills=2)
        tuning = msgspec.structs.replace(FAST, rest_check_seconds=0.05)
        st = make_settings(target_volume=Decimal(300), order_timeout_seconds=2.0)
        spec = make_spec(sim, supervisor, tmp_path, [st], tuning=tuning)
        assert await run_user(spec) == Exit.OK
        acc = await sim.admin.account("u1")
        state = await sim.admin.state()
        assert state["stream"]["dropped"] > 0
        assert acc["open_orders"] == 0
        assert Decimal(acc["volume_now"]["KOGE"]) >= 300
        # the lost reports were made up for by asking REST for the trades
        assert any("get-user-trades" in k for k in acc["requests"])
        spent = START_USDT - Decimal(acc["balances"]["USDT"]["free"])
        assert (await supervisor.summary()).cost_today == spent
        _exact_against_sim(acc, spec.journal_path)


async def test_a_price_jump_costs_at_most_one_order_priced_from_our_old_fill(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        # no volatility pause: the next buys see the jump only through their own prices
        st = make_settings(
            target_volume=Decimal(900),
            order_timeout_seconds=0.3,
            max_price_volatility_percentage=Decimal(100),
        )
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [st])))
        await supervisor.wait_for(lambda x: isinstance(x, m.TradeDone))
        await sim.admin.set_price("KOGE", Decimal("60"))  # +25%: old-priced buys cannot fill
        assert await asyncio.wait_for(run, 30) == Exit.OK
        acc = await sim.admin.account("u1")
        buys = [o for o in acc["orders"] if o["position"] == "OTO_WORKING"]
        unfilled = [o for o in buys if o["status"] != "FILLED"]
        # the buy priced from our last fill before the jump times out and is cancelled;
        # the next one asks the ticker instead of repeating the stale price
        assert len(unfilled) <= 1, unfilled
        assert any(Decimal(o["price"]) > 60 and o["status"] == "FILLED" for o in buys)
        assert acc["open_orders"] == 0
        assert Decimal(acc["volume_now"]["KOGE"]) >= 900


async def test_the_supervisors_fresh_volume_read_saves_the_first_one(
    sim_factory, supervisor, tmp_path
) -> None:
    """The supervisor read today's volume just before the fork and hands it over: the
    user process does not ask again before its first batch (a stale figure is asked)."""
    import time

    async with sim_factory() as sim:
        reads = {}
        for user, at in (("u1", time.time()), ("u2", time.time() - 120)):
            await sim.admin.set_volume(user, "KOGE", Decimal(40))
            st = make_settings(user_id=user, target_volume=Decimal(41))
            spec = msgspec.structs.replace(
                make_spec(sim, supervisor, tmp_path / user, [st], user=user),
                known_volumes={"koge": Decimal(40)},
                known_volumes_at=at,
            )
            assert await run_user(spec) == Exit.OK
            requests = (await sim.admin.account(user))["requests"]
            reads[user] = sum(n for p, n in requests.items() if "user-volume" in p)
        assert reads["u2"] == reads["u1"] + 1, reads  # the stale figure was asked again
