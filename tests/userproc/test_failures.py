"""Orders that do not fill, partial fills, lost stream events, dead sessions and risk
challenges: the user ends with nothing open and no tokens, or says exactly what is left,
and never retries what must not be retried."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from decimal import Decimal

import msgspec
import pytest

from protocol import messages as m
from protocol.exitcodes import Exit
from userproc.journal import Journal
from userproc.main import run_user

from .conftest import FAST, make_settings, make_spec


async def _acc(sim, name="u1") -> dict:
    return await sim.admin.account(name)


def _held(acc: dict, asset: str) -> Decimal:
    b = acc["balances"].get(asset, {})
    return Decimal(b.get("free", "0")) + Decimal(b.get("locked", "0"))


async def test_buys_that_never_fill_are_cancelled_and_the_user_stops(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        await sim.admin.set_faults(never_fill=True)
        tuning = msgspec.structs.replace(FAST, max_consecutive_failures=2)
        st = make_settings(order_timeout_seconds=0.2)
        code = await run_user(make_spec(sim, supervisor, tmp_path, [st], tuning=tuning))
        assert code == Exit.EXCHANGE_DOWN
        acc = await _acc(sim)
        assert acc["oto_count"] == 2 and acc["open_orders"] == 0
        assert _held(acc, "ALPHA_22") == 0
        assert (await supervisor.summary()).open_orders == 0
        kinds = {e.kind for e in supervisor.of(m.ErrorReport)}
        assert "no_fill" in kinds


async def test_sell_that_does_not_fill_is_cancelled_and_sold_at_market(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        # a sell limit 5% above the buy never crosses: the OTO sell times out
        st = make_settings(
            sell_profit_percentage=Decimal("-5"),
            target_volume=Decimal(50),
            order_timeout_seconds=0.2,
        )
        code = await run_user(make_spec(sim, supervisor, tmp_path, [st]))
        assert code == Exit.OK
        acc = await _acc(sim)
        assert acc["open_orders"] == 0
        assert _held(acc, "ALPHA_22") < Decimal("0.0001") * acc["oto_count"]
        oto_sells = [o for o in acc["orders"] if o["position"] == "OTO_PENDING"]
        plain_sells = [o for o in acc["orders"] if o["side"] == "SELL" and not o["position"]]
        assert oto_sells and all(o["status"] == "CANCELED" for o in oto_sells)
        assert plain_sells and all(o["status"] == "FILLED" for o in plain_sells)
        assert Decimal(acc["volume_now"]["KOGE"]) >= 50


def _unsellable(sim, supervisor, tmp_path):
    """A user whose tokens cannot be sold: its OTO sells are 5% above the buy, its leftover
    sells 20% above the market, two attempts."""
    tuning = msgspec.structs.replace(
        FAST, leftover_sell_attempts=2, leftover_sell_discount_percentage=Decimal("-20")
    )
    st = make_settings(
        sell_profit_percentage=Decimal("-5"),
        target_volume=Decimal(50),
        order_timeout_seconds=0.2,
    )
    return make_spec(sim, supervisor, tmp_path, [st], tuning=tuning)


async def test_unsellable_tokens_pause_the_user_naming_token_and_quantity(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        code = await run_user(_unsellable(sim, supervisor, tmp_path))
        assert code == Exit.LEFTOVER
        acc = await _acc(sim)
        assert acc["oto_count"] == 1  # bought nothing more
        assert acc["open_orders"] == 0
        summary = await supervisor.summary()
        (left,) = summary.leftovers
        assert left.token == "KOGE" and left.asset == "ALPHA_22"
        assert left.quantity == _held(acc, "ALPHA_22")
        assert "KOGE" in summary.reason and str(left.quantity) in summary.reason
        assert any(p.phase == "paused" for p in supervisor.of(m.PhaseChanged))  # before Summary


async def test_partial_fills_are_summed_exactly(sim_factory, supervisor, tmp_path) -> None:
    async with sim_factory() as sim:
        await sim.admin.set_faults(partial_fills=3)
        st = make_settings(target_volume=Decimal(100))
        code = await run_user(make_spec(sim, supervisor, tmp_path, [st]))
        assert code == Exit.OK
        acc = await _acc(sim)
        assert acc["open_orders"] == 0 and _held(acc, "ALPHA_22") < Decimal("0.001")
        # the cost we report is exactly what the exchange took from the account in USDT
        spent = Decimal(10000) - Decimal(acc["balances"]["USDT"]["free"])
        assert (await supervisor.summary()).cost_today == spent
        trades = [t for o in acc["orders"] for t in o["trades"]]
        assert len(trades) == 3 * len(acc["orders"])  # every fill really came in 3 parts


async def test_lost_stream_events_are_found_through_rest(sim_factory, supervisor, tmp_path) -> None:
    async with sim_factory() as sim:
        await sim.admin.set_faults(drop_events=1.0, disconnect_every=0.3)
        tuning = msgspec.structs.replace(FAST, rest_check_seconds=0.05)
        st = make_settings(target_volume=Decimal(120), order_timeout_seconds=2.0)
        code = await run_user(make_spec(sim, supervisor, tmp_path, [st], tuning=tuning))
        assert code == Exit.OK
        acc = await _acc(sim)
        assert Decimal(acc["volume_now"]["KOGE"]) >= 120
        assert acc["open_orders"] == 0
        # every round trip completed on its first OTO: no buy was timed out and cancelled
        assert all(o["status"] == "FILLED" for o in acc["orders"])


async def test_expired_session_stops_without_retry(sim_factory, supervisor, tmp_path) -> None:
    async with sim_factory() as sim:
        await sim.admin.set_faults(session_expired=["u1"])
        code = await run_user(make_spec(sim, supervisor, tmp_path, [make_settings()]))
        assert code == Exit.SESSION_EXPIRED
        acc = await _acc(sim)
        assert acc["oto_count"] == 0
        summary = await supervisor.summary()
        assert "log in again" in summary.reason
        assert supervisor.of(m.ErrorReport)[-1].fatal


async def test_risk_challenge_stops_at_once_and_places_nothing_more(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        await sim.admin.set_faults(risk_challenge=["u1"])
        code = await run_user(make_spec(sim, supervisor, tmp_path, [make_settings()]))
        assert code == Exit.RISK_CHALLENGE
        acc = await _acc(sim)
        assert acc["oto_count"] == 0 and acc["open_orders"] == 0
        j = Journal(tmp_path / "journals" / "user-u1.sqlite")
        assert j.open_trades() == []  # the refused intent is closed, not left to re-send
        j.close()


async def test_partly_filled_buy_that_times_out_is_cancelled_and_its_tokens_sold(
    sim_factory, supervisor, tmp_path
) -> None:
    import asyncio

    async with sim_factory(fill_delay=0.12) as sim:
        await sim.admin.set_faults(partial_fills=4)  # each part 0.12 s apart
        st = make_settings(order_timeout_seconds=0.2, target_volume=Decimal(1000))
        tuning = msgspec.structs.replace(FAST, leftover_sell_timeout_seconds=2.0)
        run = asyncio.create_task(
            run_user(make_spec(sim, supervisor, tmp_path, [st], tuning=tuning))
        )
        done = await supervisor.wait_for(lambda x: isinstance(x, m.TradeDone), within=20)
        await supervisor.send(m.Drain())
        assert await asyncio.wait_for(run, 20) == Exit.OK
        acc = await _acc(sim)
        first_buy = next(o for o in acc["orders"] if o["position"] == "OTO_WORKING")
        assert first_buy["status"] == "CANCELED"
        assert Decimal(0) < Decimal(first_buy["executed_qty"]) < Decimal(first_buy["orig_qty"])
        assert done.buy_quote == Decimal(first_buy["cum_quote"])
        assert acc["open_orders"] == 0
        assert _held(acc, "ALPHA_22") < Decimal("0.0001") * acc["oto_count"]
        assert not (await supervisor.summary()).leftovers


async def test_no_new_order_while_the_stream_is_down_then_resumes(
    sim_factory, supervisor, tmp_path
) -> None:
    import asyncio

    async with sim_factory() as sim:
        st = make_settings(target_volume=Decimal(200))
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [st])))
        await supervisor.wait_for(lambda x: isinstance(x, m.TradeDone))
        await sim.admin.set_faults(error_next=100000, paths=["get-listen-key"])
        await sim.admin.disconnect_streams("u1")
        placed_before = (await _acc(sim))["oto_count"]
        await supervisor.wait_for(
            lambda x: isinstance(x, m.PhaseChanged) and x.phase == "waiting_stream"
        )
        # at most the round trip that was already running when the stream dropped
        assert (await _acc(sim))["oto_count"] <= placed_before + 1
        await sim.admin.set_faults(error_next=0)
        assert await asyncio.wait_for(run, 20) == Exit.OK
        acc = await _acc(sim)
        assert Decimal(acc["volume_now"]["KOGE"]) >= 200 and acc["open_orders"] == 0


async def test_session_expiring_mid_run_stops_without_hammering(
    sim_factory, supervisor, tmp_path
) -> None:
    import asyncio

    async with sim_factory(fill_delay=0.02) as sim:
        st = make_settings(target_volume=Decimal(100000))
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [st])))
        await supervisor.wait_for(lambda x: isinstance(x, m.TradeDone))
        before = sum((await _acc(sim))["requests"].values())
        await sim.admin.set_faults(session_expired=["u1"])
        assert await asyncio.wait_for(run, 10) == Exit.SESSION_EXPIRED
        after = sum((await _acc(sim))["requests"].values())
        assert after - before <= 6  # a few calls in flight, then silence: no retry loop
        summary = await supervisor.summary()
        assert summary.exit_code == Exit.SESSION_EXPIRED and "log in again" in summary.reason


class _StampedCounter(Counter):
    """The sim's per-account request counter, also noting when each request came."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        super().__init__()

    def __setitem__(self, key: str, value: int) -> None:
        self.times.setdefault(key, []).append(time.monotonic())
        super().__setitem__(key, value)


async def test_rate_limits_are_waited_out(sim_factory, supervisor, tmp_path) -> None:
    async with sim_factory() as sim:
        stamps = _StampedCounter()
        sim.sim.account("u1").requests = stamps
        await sim.admin.set_faults(rate_limit_next=1, retry_after=0.5, paths=["user-volume"])
        code = await run_user(
            make_spec(sim, supervisor, tmp_path, [make_settings(target_volume=Decimal(60))])
        )
        assert code == Exit.OK
        await supervisor.summary()
        assert any(e.kind == "rate_limited" for e in supervisor.of(m.ErrorReport))
        (path,) = [p for p in stamps.times if p.endswith("user-volume")]
        first, retry = stamps.times[path][:2]  # the 429, then the next ask of that path
        assert retry - first >= 0.5, retry - first
        assert Decimal((await _acc(sim))["volume_now"]["KOGE"]) >= 60


async def test_unusable_credentials_are_a_config_error_naming_the_field(
    sim_factory, supervisor, tmp_path
) -> None:
    from exchange.auth import Credentials

    async with sim_factory() as sim:
        spec = make_spec(sim, supervisor, tmp_path, [make_settings()])
        good = spec.credentials
        bad = Credentials(cookies={"p20t": good.cookies["p20t"]}, headers={})
        spec = msgspec.structs.replace(spec, credentials=bad)
        assert await run_user(spec) == Exit.BAD_CONFIG
        summary = await supervisor.summary()
        assert "cr00" in summary.reason
        assert good.cookies["p20t"] not in summary.reason  # the reason names, never shows


async def test_unknown_token_is_a_config_error(sim_factory, supervisor, tmp_path) -> None:
    async with sim_factory() as sim:
        spec = make_spec(sim, supervisor, tmp_path, [make_settings(target_token="NOPE")])
        assert await run_user(spec) == Exit.BAD_CONFIG
        assert "NOPE" in (await supervisor.summary()).reason


async def test_rate_limited_order_is_not_counted_as_placed(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        await sim.admin.set_faults(rate_limit_next=1, retry_after=0.05, paths=["oto-order/place"])
        code = await run_user(
            make_spec(sim, supervisor, tmp_path, [make_settings(target_volume=Decimal(60))])
        )
        assert code == Exit.OK
        acc = await _acc(sim)
        j = Journal(tmp_path / "journals" / "user-u1.sqlite")
        assert len(j._rows("kind='oto' AND placed=1")) == acc["oto_count"]
        assert len(j._rows("kind='oto' AND outcome='rate_limited'")) == 1
        j.close()
        assert acc["open_orders"] == 0 and Decimal(acc["volume_now"]["KOGE"]) >= 60


@pytest.mark.serial
async def test_dropped_reports_cost_at_most_twice_the_run_time(
    sim_factory, supervisor, tmp_path
) -> None:
    """With 20 % of execution reports dropped, a leg whose end was not reported is asked
    of REST once it is overdue against the fills this process has been seeing (floor
    1 s), not after a fixed 30 s: the same run to target takes at most twice as long."""
    tuning = msgspec.structs.replace(FAST, rest_check_seconds=30.0)
    took, reached = [], []
    for drop in (0.0, 0.2):
        async with sim_factory(fill_delay=0.3, seed=11) as sim:
            await sim.admin.set_faults(drop_events=drop)
            st = make_settings(target_volume=Decimal(120), volume_check_delay_seconds=0.05)
            spec = make_spec(sim, supervisor, tmp_path / f"d{drop}", [st], tuning=tuning)
            t0 = time.monotonic()
            assert await run_user(spec) == Exit.OK
            took.append(time.monotonic() - t0)
            acc = await _acc(sim)
            assert acc["open_orders"] == 0
            reached.append(Decimal(acc["volume_now"]["KOGE"]))
            if drop:
                assert sim.sim.hub.dropped > 0
    assert all(Decimal(120) <= v < Decimal(120) + 30 for v in reached), reached
    assert took[1] <= 2 * took[0], f"{took[1]:.1f} s with drops vs {took[0]:.1f} s without"


async def test_insufficient_balance_is_fatal_at_once_in_the_exchanges_words(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        await sim.admin.set_balance("u1", "USDT", Decimal(5))
        st = make_settings(
            target_volume=Decimal(300),
            single_trade_amount_usdt=Decimal(30),
            min_balance_usdt=Decimal(0),  # the balance floor off: the exchange refuses
        )
        t0 = time.monotonic()
        assert await run_user(make_spec(sim, supervisor, tmp_path, [st])) == (
            Exit.INSUFFICIENT_BALANCE
        )
        assert time.monotonic() - t0 < 10
        acc = await _acc(sim)
        assert acc["oto_count"] == 0 and acc["open_orders"] == 0
        posts = sum(n for path, n in acc["requests"].items() if "oto-order/place" in path)
        assert 1 <= posts <= 2
        reason = (await supervisor.summary()).reason
        assert "insufficient balance" in reason and "余额不足" in reason


async def test_a_refused_price_stops_that_strategy_and_the_next_one_trades(
    sim_factory, supervisor, tmp_path
) -> None:
    """After the first round trip the exchange's tick for KOGE becomes coarser than the
    filters the strategy read: its next OTO is refused (481002). That strategy stops
    with a reason saying so, at once, and the user's AOP strategy still runs."""
    async with sim_factory() as sim:
        koge = make_settings(strategy_id="koge", target_volume=Decimal(1000))
        aop = make_settings(strategy_id="aop", target_token="AOP", target_volume=Decimal(200))
        run = asyncio.create_task(run_user(make_spec(sim, supervisor, tmp_path, [koge, aop])))
        await supervisor.wait_for(lambda x: isinstance(x, m.TradeDone))
        await sim.admin.set_token("KOGE", tick_size="0.001", price="48.12345")
        assert await asyncio.wait_for(run, 30) == Exit.BAD_CONFIG
        summary = await supervisor.summary()
        first, second = summary.strategies
        assert first.error and "481002" in first.error and "price or amount" in first.error
        assert second.reached and second.error is None
        acc = await _acc(sim)
        refused = acc["requests"].get("/bapi/asset/v1/private/alpha-trade/oto-order/place", 0)
        koge_otos = [o for o in acc["orders"] if o["token"] == "KOGE" and o["side"] == "BUY"]
        assert refused - acc["oto_count"] == 1  # refused once, never looped
        assert len(koge_otos) >= 1 and acc["open_orders"] == 0


async def test_a_risk_challenge_on_an_accepted_oto_finishes_it_then_stops(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        await sim.admin.set_faults(risk_challenge_accepted=["u1"])
        st = make_settings(target_volume=Decimal(300))
        assert await run_user(make_spec(sim, supervisor, tmp_path, [st])) == Exit.RISK_CHALLENGE
        acc = await _acc(sim)
        assert acc["oto_count"] == 1 and acc["open_orders"] == 0
        assert _held(acc, "ALPHA_22") < Decimal("0.0001")  # nothing sellable left
        summary = await supervisor.summary()
        assert "verification" in summary.reason and not summary.leftovers
        j = Journal(tmp_path / "journals" / "user-u1.sqlite")
        assert j.open_trades() == [] and len(j._rows("placed=1")) == 1  # adopted, finished
        j.close()


async def test_a_risk_challenge_on_an_accepted_oto_names_what_its_round_trip_left(
    sim_factory, supervisor, tmp_path
) -> None:
    """The adopted round trip's tokens cannot be sold (its sells are priced above the
    market): the user still stops for the challenge, and says exactly what is left."""
    async with sim_factory() as sim:
        await sim.admin.set_faults(risk_challenge_accepted=["u1"])
        code = await run_user(_unsellable(sim, supervisor, tmp_path))
        assert code == Exit.RISK_CHALLENGE
        acc = await _acc(sim)
        assert acc["oto_count"] == 1 and acc["open_orders"] == 0
        summary = await supervisor.summary()
        (left,) = summary.leftovers
        assert left.token == "KOGE" and left.asset == "ALPHA_22"
        assert left.quantity == _held(acc, "ALPHA_22") > 0
        assert "verification" in summary.reason and str(left.quantity) in summary.reason
        j = Journal(tmp_path / "journals" / "user-u1.sqlite")
        assert [r.outcome for r in j._rows("kind='oto'")] == ["leftover"]
        j.close()


async def test_an_unknown_token_fails_only_its_own_strategy(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        typo = make_settings(strategy_id="typo", target_token="KOGEE")
        aop = make_settings(strategy_id="aop", target_token="AOP", target_volume=Decimal(200))
        code = await run_user(make_spec(sim, supervisor, tmp_path, [typo, aop]))
        assert code == Exit.BAD_CONFIG
        first, second = (await supervisor.summary()).strategies
        assert "KOGEE" in (first.error or "") and second.reached
