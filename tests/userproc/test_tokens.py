"""Issue 14 on the simulated exchange: the multiplier that drops after 30 days, the
cheapest token chosen (and changed) at batch boundaries, the 100 USDT balance rule, a token
that stops trading mid-day, and human-like variation that keeps the overshoot bound.

Each run is a real user process (in this test's loop) against the sim over real sockets;
every figure checked is the sim's own record."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from protocol import messages as m
from protocol.exitcodes import Exit
from userproc.main import run_user

from .conftest import FAST, make_settings, make_spec

FEES = Decimal("0.0002")  # 1 bp a side
FULL_QUOTE = Decimal(30) / Decimal("1.005")  # what a 30 USDT buy at +0.5 % really spends


def otos(acc: dict) -> list[tuple[dict, dict | None]]:
    """(buy leg, its sell leg) of every OTO, in the order they were placed."""
    by_list: dict[str, list[dict]] = {}
    for o in acc["orders"]:
        if o["position"] in ("OTO_WORKING", "OTO_PENDING"):
            by_list.setdefault(o["order_list_id"], []).append(o)
    out = []
    for legs in by_list.values():
        buy = next(o for o in legs if o["position"] == "OTO_WORKING")
        sell = next((o for o in legs if o["position"] == "OTO_PENDING"), None)
        out.append((buy, sell))
    return sorted(out, key=lambda p: int(p[0]["order_id"]))


def assert_round_trips_complete(acc: dict) -> None:
    """Nothing open, and every buy that filled was sold by its own OTO."""
    assert acc["open_orders"] == 0
    for buy, sell in otos(acc):
        if Decimal(buy["executed_qty"]) > 0:
            assert sell is not None and sell["status"] == "FILLED", (buy, sell)


def unsold_value(acc: dict, state: dict, token: str) -> Decimal:
    """USDT value (at the bid) of what the account still holds of ``token``."""
    held = sum(
        (Decimal(b["free"]) + Decimal(b["locked"]))
        for b in acc["balances"].values()
        if b.get("symbol") == token
    )
    return held * Decimal(state["tokens"][token]["bid"])


def seconds_to_midnight(now: float) -> float:
    return (int(now // 86400) + 1) * 86400 - now


async def run_changing_a_token(sim, supervisor, tmp_path, target: str, volume: int, **kw):
    """Run a user to its end (round trips 30 ms apart); after its first round trip, the
    exchange changes a token (``kw``: the ``set_token`` call). Returns the exit status."""
    symbol, change = kw.pop("change")
    st = make_settings(
        strategy_id="s",
        target_token=target,
        target_volume=Decimal(volume),
        trade_interval_seconds=0.03,
        **kw,
    )
    run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [st])))
    await supervisor.wait_for(lambda x: isinstance(x, m.TradeDone))
    await sim.admin.set_token(symbol, **change)
    return await asyncio.wait_for(run, 60)


def cheapest(state: dict) -> str:
    """The token a user with hindsight of the book would trade: (spread + fees) / mulPoint."""
    cost = {}
    for sym, t in state["tokens"].items():
        if t["status"] != "TRADING":
            continue
        bid, ask = Decimal(t["bid"]), Decimal(t["ask"])
        cost[sym] = ((ask - bid) / ((ask + bid) / 2) + FEES) / Decimal(t["mul_point"])
    return min(cost, key=lambda s: cost[s])


async def test_mul_point_drops_from_4_to_1_at_the_midnight_after_day_30_and_the_planner_follows(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        clock = sim.sim.clock  # the user process shares the exchange's clock
        assert (await sim.admin.state())["mul_points"]["GOATED"] == 4  # its 30th day
        st = make_settings(strategy_id="goat", target_token="GOATED", target_volume=Decimal(600))
        spec = make_spec(sim, supervisor, tmp_path, [st])
        assert await run_user(spec, clock=clock) == Exit.OK
        day1 = list(supervisor.messages)
        acc = await sim.admin.account("u1")
        first_day_trades = acc["oto_count"]

        await sim.admin.advance_time(seconds_to_midnight(clock.time()) + 60)
        assert (await sim.admin.state())["mul_points"]["GOATED"] == 1
        assert await run_user(spec, clock=clock) == Exit.OK
        day2 = supervisor.messages[len(day1) :]
        acc = await sim.admin.account("u1")

    def seen(msgs: list, kind: type) -> list:
        return [x for x in msgs if isinstance(x, kind)]

    assert {v.mul_point for v in seen(day1, m.VolumeChecked)} == {4}
    assert {v.mul_point for v in seen(day2, m.VolumeChecked)} == {1}
    credit1 = seen(day1, m.BatchPlanned)[0].credit_per_trade
    credit2 = seen(day2, m.BatchPlanned)[0].credit_per_trade
    assert abs(credit1 - 4 * FULL_QUOTE) < 1 and abs(credit2 - FULL_QUOTE) < Decimal("0.3")
    second_day_trades = acc["oto_count"] - first_day_trades
    assert first_day_trades == 6 and second_day_trades >= 4 * first_day_trades - 4
    today = Decimal(acc["volume_now"]["GOATED"])  # the new day's volume only
    assert Decimal(600) <= today <= Decimal(600) + FULL_QUOTE  # one x1 trade over, at most
    assert_round_trips_complete(acc)


async def test_auto_trades_the_cheapest_token_and_switches_at_a_batch_boundary(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory(spread=None) as sim:  # every token's own spread
        first = cheapest(await sim.admin.state())
        # the cheapest token's book widens: 20 bp, (20 + 2) / 4 = 5.5 bp per credited USDT
        widen = (first, {"spread": "0.002"})
        code = await run_changing_a_token(sim, supervisor, tmp_path, "auto", 2400, change=widen)
        assert code == Exit.OK
        acc = await sim.admin.account("u1")
        total = sum(Decimal(v) for v in acc["volume_now"].values())
        state = await sim.admin.state()
        second = cheapest(state)  # a calm market: nothing else moved

    assert first == "LIGHT" and second != first  # the sim's default universe
    chosen = supervisor.of(m.TokenChosen)
    assert chosen[0].token == first and chosen[0].previous is None
    assert chosen[0].cost_per_credit < Decimal("0.0001")  # (1 + 2) bp / 4
    switch = next(c for c in chosen if c.token != first)
    assert switch.token == second and switch.previous == first
    # one token after the other, never interleaved; the switch fell between batches
    tokens = [buy["token"] for buy, _ in otos(acc)]
    n_first = tokens.index(second)
    assert tokens == [first] * n_first + [second] * (len(tokens) - n_first), tokens
    batches = [t.batch for t in supervisor.of(m.TradeDone)]
    assert max(batches[:n_first]) < min(batches[n_first:]), batches
    assert_round_trips_complete(acc)
    assert Decimal(2400) <= total <= Decimal(2400) + 4 * FULL_QUOTE
    for token in (first, second):
        assert unsold_value(acc, state, token) < Decimal("0.1")  # dust, not a position


async def test_an_account_with_60_usdt_is_not_traded_and_says_why(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        await sim.admin.set_balance("u1", "USDT", Decimal(60))
        spec = make_spec(sim, supervisor, tmp_path, [make_settings(target_volume=Decimal(300))])
        assert await run_user(spec) == Exit.LOW_BALANCE
        acc = await sim.admin.account("u1")
    assert acc["oto_count"] == 0 and acc["orders"] == []
    reason = (await supervisor.summary()).reason
    assert "eligible balance 60.00 USDT" in reason and "min_balance_usdt 100" in reason
    assert "no volume points" in reason, reason
    (report,) = [e for e in supervisor.of(m.ErrorReport) if e.kind == "low_balance"]
    assert report.message == reason and not report.fatal


async def test_trading_stops_before_it_would_end_the_day_under_the_floor(
    sim_factory, supervisor, tmp_path
) -> None:
    """101 USDT and 14 points to do on a x1 token: its fees alone (about 3.3 USDT) would end
    the day under 100. It trades what the balance allows (batches cut to it, the cost
    counted twice), then stops for the day, still above the floor, saying why."""
    async with sim_factory() as sim:
        await sim.admin.set_balance("u1", "USDT", Decimal(101))
        st = make_settings(target_volume=Decimal(16384), volume_check_delay_seconds=0.05)
        assert await run_user(make_spec(sim, supervisor, tmp_path, [st])) == Exit.LOW_BALANCE
        acc = await sim.admin.account("u1")
    reason = (await supervisor.summary()).reason
    assert "one more round trip" in reason and "min_balance_usdt 100" in reason, reason
    assert Decimal(100) <= Decimal(acc["eligible_balance"]) < Decimal("100.1")
    assert 100 <= acc["oto_count"] < 549 and acc["open_orders"] == 0
    volume = Decimal(acc["volume_now"]["KOGE"])
    assert Decimal(3000) < volume < Decimal(16384)  # the points of what was traded count


async def test_a_fixed_token_that_stops_trading_is_left_at_a_batch_boundary(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        brk = ("AOP", {"status": "BREAK"})
        code = await run_changing_a_token(sim, supervisor, tmp_path, "AOP", 3000, change=brk)
        acc = await sim.admin.account("u1")
        state = await sim.admin.state()
    assert code == Exit.BAD_CONFIG  # that strategy cannot go on: its token does not trade
    (strategy,) = (await supervisor.summary()).strategies
    assert strategy.error is not None and "AOP is not trading (BREAK)" in strategy.error
    assert_round_trips_complete(acc)
    assert unsold_value(acc, state, "AOP") < Decimal("0.1")
    filled = sum(1 for buy, _ in otos(acc) if Decimal(buy["executed_qty"]) > 0)
    assert filled == acc["oto_count"] and 1 <= filled < 25  # nothing placed after the break


async def test_auto_leaves_a_delisted_token_at_a_batch_boundary_and_goes_on(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory(spread=None) as sim:
        gone = ("LIGHT", {"status": "DELISTED"})
        code = await run_changing_a_token(
            sim, supervisor, tmp_path, "auto", 2400, change=gone, candidates=("LIGHT", "GOATED")
        )
        assert code == Exit.OK
        acc = await sim.admin.account("u1")
        state = await sim.admin.state()
    tokens = [buy["token"] for buy, _ in otos(acc)]
    assert tokens[0] == "LIGHT" and tokens[-1] == "GOATED"
    assert_round_trips_complete(acc)
    assert unsold_value(acc, state, "LIGHT") < Decimal("0.1")
    counted = Decimal(acc["volume_now"]["LIGHT"]) + Decimal(acc["volume_now"]["GOATED"])
    assert Decimal(2400) <= counted <= Decimal(2400) + 4 * FULL_QUOTE
    assert (await supervisor.summary()).strategies[0].reached


async def test_jittered_amounts_and_pauses_keep_the_overshoot_within_one_trade(
    sim_factory, supervisor, tmp_path
) -> None:
    import msgspec

    tuning = msgspec.structs.replace(FAST, jitter_seed=11)
    async with sim_factory() as sim:
        targets = {"a": Decimal(600), "b": Decimal(1000)}
        for user, target in targets.items():
            st = make_settings(
                user_id=user,
                target_volume=target,
                amount_jitter_percentage=Decimal(40),
                trade_interval_seconds=0.01,
                interval_jitter_seconds=0.01,
            )
            spec = make_spec(sim, supervisor, tmp_path / user, [st], user=user, tuning=tuning)
            assert await run_user(spec) == Exit.OK
            acc = await sim.admin.account(user)
            final = Decimal(acc["volume_now"]["KOGE"])
            assert target <= final <= target + FULL_QUOTE, (user, final)
            quotes = [Decimal(buy["cum_quote"]) for buy, _ in otos(acc)]
            assert len(set(quotes)) >= len(quotes) - 1  # drawn afresh for each round trip
            assert max(quotes) > Decimal(35) and min(quotes[:-1]) < Decimal(24)


async def test_auto_waits_while_only_the_market_excludes_every_candidate(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory(spread=None) as sim:
        st = make_settings(
            target_token="auto",
            candidates=("LIGHT",),
            max_spread_percentage=Decimal("0.005"),  # LIGHT is 1 bp wide: 0.01 %
            target_volume=Decimal(300),
        )
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [st])))
        waiting = await supervisor.wait_for(
            lambda x: isinstance(x, m.PhaseChanged) and x.phase == "waiting_price"
        )
        assert (await sim.admin.account("u1"))["oto_count"] == 0
        await sim.admin.set_token("LIGHT", spread="0.00002")  # narrower than the limit
        assert await asyncio.wait_for(run, 30) == Exit.OK
        acc = await sim.admin.account("u1")
    assert "LIGHT: spread 0.0100% over max_spread_percentage 0.005" in (waiting.reason or "")
    assert Decimal(300) <= Decimal(acc["volume_now"]["LIGHT"]) <= Decimal(300) + 4 * FULL_QUOTE


async def test_auto_with_nothing_that_can_trade_fails_that_strategy_saying_why(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        await sim.admin.set_token("AOP", status="BREAK")
        st = make_settings(target_token="auto", candidates=("AOP", "NOPE"))
        assert await run_user(make_spec(sim, supervisor, tmp_path, [st])) == Exit.BAD_CONFIG
        assert (await sim.admin.account("u1"))["oto_count"] == 0
    (strategy,) = (await supervisor.summary()).strategies
    assert strategy.error == (
        "no token to trade: NOPE: not in the token list; AOP: not trading (BREAK)"
    )
