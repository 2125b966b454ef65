"""The pieces of the user process that need no exchange: journal, tracker, planner,
state machine. Each test states a behaviour a user (or the next restart) relies on."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest

from exchange.models import ExecutionReport, HistoryOrder
from protocol.exitcodes import Exit
from userproc.journal import Journal
from userproc.lifecycle import IllegalTransition, Lifecycle, Phase, StopMode, StopRequested
from userproc.planner import CreditModel, next_trade_amount, plan_batch
from userproc.tracker import OrderTracker


def _rep(order_id: str, status: str, z: str = "0", Z: str = "0", n: str = "0", q: str = "10"):
    return ExecutionReport(
        symbol="ALPHA_22USDT",
        side="BUY",
        status=status,
        order_id=order_id,
        qty=D(q),
        cum_qty=D(z),
        cum_quote=D(Z),
        fee=D(n),
        fee_asset="ALPHA_22",
    )


def test_journal_intent_survives_reopen_and_lists_unfinished(tmp_path) -> None:
    path = tmp_path / "j" / "user-1.sqlite"
    j = Journal(path)
    tid = j.record_intent(
        kind="oto",
        strategy_id="s",
        day="2026-01-01",
        symbol="ALPHA_22USDT",
        base_asset="ALPHA_22",
        token="KOGE",
        qty=D("1.5"),
        buy_price=D("20.1"),
        sell_price=D("19.9"),
        amount=D("30.15"),
        intent_ms=1000,
    )
    j.close()  # as after a kill: the row is already on disk
    j = Journal(path)
    (row,) = j.open_trades()
    assert row.id == tid and row.placed == 0 and row.working_id is None
    assert row.buy_price == D("20.1") and row.qty == D("1.5")
    j.record_ids(tid, "100", "101")
    assert j.known_order_ids() == {"100", "101"}
    j.finish(tid, "done", 2000, cost=D("0.0123"))
    assert j.open_trades() == []
    assert j.cost_on("2026-01-01") == D("0.0123")
    assert j.trades_on("2026-01-01") == 1


async def test_tracker_status_never_goes_backwards_and_early_events_are_kept() -> None:
    t = OrderTracker()
    # the stream reports the fill before the place response told us the id
    await t.apply_report(_rep("7", "FILLED", z="10", Z="20", n="0.001"))
    await t.apply_report(_rep("7", "NEW"))  # a late, stale report
    await t.apply_rest(
        HistoryOrder(
            order_id="7",
            symbol="ALPHA_22USDT",
            side="BUY",
            status="PARTIALLY_FILLED",
            orig_qty=D(10),
            executed_qty=D(4),
        )
    )
    st = t.ensure("7")
    assert st.status == "FILLED" and st.cum_qty == D(10) and st.cum_quote == D(20)
    assert st.fee == D("0.001")


async def test_tracker_wait_wakes_on_change_and_on_interrupt() -> None:
    t = OrderTracker()
    waiter = asyncio.create_task(t.wait("9", lambda s: s.filled, within=5))
    await asyncio.sleep(0)
    await t.apply_report(_rep("9", "FILLED", z="10", Z="1"))
    st = await asyncio.wait_for(waiter, 2)
    assert st is not None and st.filled
    stop = asyncio.Event()
    stop.set()
    assert await t.wait("10", lambda s: s.filled, within=5, interrupt=stop) is None
    assert await t.wait("11", lambda s: s.filled, within=0.01) is None


def test_first_batch_cannot_overshoot_even_if_credit_is_double() -> None:
    # AOP-like: mulPoint 4, 30 USDT trades, 1000 reported to go
    m = CreditModel("reported")
    p = plan_batch(
        remaining=D(1000),
        amount=D(30),
        buy_offset_pct=D("0.5"),
        ratio=m.ratio(D(4)),
        learned=m.learned,
        min_amount=D("0.2"),
    )
    assert not p.learned
    assert p.loops * p.credit_per_trade * 2 <= D(1000)
    # the exchange actually counted half our estimate (no multiplier... of 2): learn it
    m.observe(delta=D(240), buy_quote=D(120), mul_point=D(4))
    assert m.learned and m.ratio(D(4)) == D(2)
    p2 = plan_batch(
        remaining=D(1000) - D(240),
        amount=D(30),
        buy_offset_pct=D("0.5"),
        ratio=m.ratio(D(4)),
        learned=True,
        min_amount=D("0.2"),
    )
    total = sum(p2.credit_for(i) for i in range(1, p2.loops + 1))
    assert D(760) <= total <= D(760) + p2.credit_per_trade


def test_last_trade_is_shrunk_but_not_below_min_notional() -> None:
    a = next_trade_amount(
        missing=D(3),
        amount=D(30),
        credit_full=D(30),
        min_amount=D("0.2"),
        learned=True,
        first_of_batch=False,
    )
    assert a is not None and D(3) < a < D(4)
    tiny = next_trade_amount(
        missing=D("0.001"),
        amount=D(30),
        credit_full=D(30),
        min_amount=D("0.2"),
        learned=True,
        first_of_batch=False,
    )
    assert tiny == D("0.2")
    assert (
        next_trade_amount(
            missing=D(0),
            amount=D(30),
            credit_full=D(30),
            min_amount=D("0.2"),
            learned=True,
            first_of_batch=False,
        )
        is None
    )


async def test_lifecycle_names_every_edge_and_reports_every_change() -> None:
    seen: list[tuple[str, str | None]] = []
    life = Lifecycle(emit=lambda p, sid, r: seen.append((p.value, sid)))
    life.to(Phase.RECONCILING)
    life.begin_strategy("koge", grace_seconds=30)
    life.to(Phase.TRADING, strategy="koge")
    assert life.may_place("koge")
    with pytest.raises(IllegalTransition):
        life.to(Phase.STARTING)
    life.end("done")
    assert seen == [
        ("reconciling", None),
        ("running", None),
        ("checking", "koge"),
        ("trading", "koge"),
        ("done", "koge"),
        ("done", None),
    ]


async def test_a_drain_is_a_drain_until_explicitly_escalated() -> None:
    life = Lifecycle()
    life.to(Phase.RECONCILING)
    life.begin_strategy("koge", grace_seconds=30)
    life.to(Phase.TRADING, strategy="koge")
    for _ in range(5):  # the supervisor re-sends Drain with every heartbeat
        life.drain("supervisor asked to drain")
    assert life.mode() is StopMode.DRAIN and life.phase("koge") is Phase.DRAINING
    assert not life.may_place("koge")  # a round trip about to place its order does not
    with pytest.raises(StopRequested):  # and nothing new begins
        life.to(Phase.TRADING, strategy="koge")
    with pytest.raises(StopRequested):
        life.to(Phase.INTERVAL, strategy="koge")
    assert life.mode() is StopMode.DRAIN
    life.now("supervisor asked to stop now")  # only an explicit escalation makes it "now"
    assert life.is_now() and life.phase("koge") is Phase.STOPPING
    assert life.reason() == "supervisor asked to drain"  # why it stopped in the first place
    life.end("stopped")


async def test_a_drain_escalates_when_its_grace_runs_out_and_a_second_sigterm_at_once() -> None:
    life = Lifecycle()
    life.to(Phase.RECONCILING)
    life.begin_strategy("koge", grace_seconds=0.05)
    life.drain("drain")
    assert await life.wait(None, StopMode.NOW, 5.0)
    assert life.reason() == "drain"
    other = Lifecycle()
    other.to(Phase.RECONCILING)
    other.begin_strategy("koge", grace_seconds=30)
    other.on_signal("SIGTERM")
    assert other.mode() is StopMode.DRAIN
    other.on_signal("SIGTERM")
    assert other.is_now()
    for lc in (life, other):
        lc.end("stopped")


async def test_stopping_one_strategy_leaves_the_others_trading() -> None:
    life = Lifecycle()
    life.to(Phase.RECONCILING)
    life.begin_strategy("koge", grace_seconds=30)
    life.begin_strategy("aop", grace_seconds=30)
    life.to(Phase.TRADING, strategy="koge")
    life.to(Phase.TRADING, strategy="aop")
    life.drain("stop koge", strategy="koge")
    assert not life.may_place("koge") and life.may_place("aop")
    assert life.event("koge", StopMode.DRAIN).is_set()
    assert not life.event("aop", StopMode.DRAIN).is_set()
    life.supervisor_lost("its event socket closed")  # the process: every strategy
    assert life.is_now("aop") and life.exit == Exit.SUPERVISOR_LOST
    life.end("stopped")


def test_a_second_process_of_the_same_user_is_refused(tmp_path) -> None:
    import os

    from userproc.journal import JournalBusy, lock_user

    path = tmp_path / "journals" / "user-1.sqlite"
    fd = lock_user(path)
    with pytest.raises(JournalBusy):
        lock_user(path)
    os.close(fd)  # released (as on exit or kill -9): the next start gets it
    os.close(lock_user(path))


def _fill(order_id: str, status: str, l: str, z: str, Z: str, n: str, L: str = "2"):  # noqa: E741
    return ExecutionReport(
        symbol="ALPHA_22USDT",
        side="BUY",
        status=status,
        order_id=order_id,
        qty=D(10),
        last_qty=D(l),
        last_price=D(L),
        cum_qty=D(z),
        cum_quote=D(Z),
        fee=D(n),
        fee_asset="ALPHA_22",
    )


async def test_stream_figures_are_trusted_only_when_every_fill_was_reported() -> None:
    t = OrderTracker()
    # all fills seen (a repeated report changes nothing): exact, fees summed per fill
    await t.apply_report(_fill("1", "PARTIALLY_FILLED", "4", "4", "8", "0.0004"))
    await t.apply_report(_fill("1", "PARTIALLY_FILLED", "4", "4", "8", "0.0004"))
    assert not t.get("1").stream_exact  # not finished yet
    await t.apply_report(_fill("1", "FILLED", "6", "10", "20", "0.0006"))
    st = t.get("1")
    assert st.stream_exact and (st.stream_qty, st.stream_quote) == (D(10), D(20))
    assert st.stream_fee == D("0.001")
    # the first fill's report was lost: the cumulative jump gives it away
    await t.apply_report(_fill("2", "FILLED", "6", "10", "20", "0.0006"))
    assert t.get("2").filled and not t.get("2").stream_exact
    # the last report was lost and REST said FILLED: the stream saw only part of it
    await t.apply_report(_fill("3", "PARTIALLY_FILLED", "4", "4", "8", "0.0004"))
    await t.apply_rest(
        HistoryOrder(
            order_id="3",
            symbol="ALPHA_22USDT",
            side="BUY",
            status="FILLED",
            price=D(2),
            orig_qty=D(10),
            executed_qty=D(10),
            cum_quote=D(20),
        )
    )
    assert t.get("3").filled and not t.get("3").stream_exact
    # a part-filled order whose end only REST has told us about: ask REST for its fills,
    # until the stream's own last report closes the chain
    await t.apply_report(_fill("4", "PARTIALLY_FILLED", "4", "4", "8", "0.0004"))
    await t.apply_rest(
        HistoryOrder(
            order_id="4",
            symbol="ALPHA_22USDT",
            side="BUY",
            status="CANCELED",
            price=D(2),
            orig_qty=D(10),
            executed_qty=D(4),
            cum_quote=D(8),
        )
    )
    assert t.get("4").terminal and not t.get("4").stream_exact
    await t.apply_report(_fill("4", "CANCELED", "0", "4", "8", "0"))
    assert t.get("4").stream_exact and t.get("4").stream_qty == D(4)
    # finished orders are dropped; late reports about them do not bring them back
    t.forget("1", "2", "3", "4")
    await t.apply_report(_fill("1", "FILLED", "6", "10", "20", "0.0006"))
    assert len(t) == 0


def test_volatility_guard_sees_the_spread_of_its_window_only() -> None:
    from userproc.guard import PriceGuard

    g = PriceGuard(10.0)
    for i, p in enumerate(["100", "101", "99", "100"]):
        g.observe(float(i), D(p))
    assert g.moved_percentage() == (D(101) - D(99)) / D(99) * 100
    assert g.too_volatile(D(2)) and not g.too_volatile(D(3))
    g.observe(12.5, D("100"))  # 101 and 99 have left the 10 s window
    assert g.moved_percentage() == 0


def _intent(j: Journal) -> int:
    return j.record_intent(
        kind="oto",
        strategy_id="s",
        day="2026-01-01",
        symbol="ALPHA_22USDT",
        base_asset="ALPHA_22",
        token="KOGE",
        qty=D(1),
        intent_ms=1,
    )


def test_journal_notes_are_redacted(tmp_path) -> None:
    from config.logsetup import add_secrets

    secret = "journal-test-secret-4f1c9a"
    add_secrets([secret])
    j = Journal(tmp_path / "j.sqlite")
    tid = _intent(j)
    j.record_not_placed(tid, "rejected", 2, f"refused: session {secret}; cookie p20t=abc123def")
    (note,) = j._db.execute("SELECT note FROM trades WHERE id=?", (tid,)).fetchone()
    j.close()
    assert note.startswith("refused:")
    assert secret not in note and "abc123def" not in note


def test_journal_outcomes_are_stored_as_the_strings_older_journals_hold(tmp_path) -> None:
    import sqlite3

    from userproc.outcome import Outcome

    path = tmp_path / "j.sqlite"
    j = Journal(path)
    ids = [_intent(j) for _ in range(3)]
    j.finish(ids[0], Outcome.DONE, 2, cost=D("0.01"))
    j.record_not_placed(ids[1], Outcome.RATE_LIMITED, 2, "429")
    j.close()
    # a row an older version wrote, with a plain string
    db = sqlite3.connect(path)
    db.execute("UPDATE trades SET outcome='done', placed=1 WHERE id=?", (ids[2],))
    db.commit()
    rows = db.execute("SELECT outcome, typeof(outcome) FROM trades ORDER BY id").fetchall()
    db.close()
    assert rows == [("done", "text"), ("rate_limited", "text"), ("done", "text")]
    j = Journal(path)
    assert j.trades_on("2026-01-01") == 2 and j.trades_on("2026-01-01", "s") == 2
    assert [r.outcome for r in j._rows("1")] == [Outcome.DONE, "rate_limited", "done"]
    j.close()


def test_auto_counts_its_candidates_volume_and_traded_divides_each_by_its_own_mul() -> None:
    from exchange.models import UserVolume
    from userproc.scope import counted_volume

    from .conftest import make_settings

    uv = UserVolume(total_volume=D(1300), per_token={"AOP": D(800), "KOGE": D(300), "TINY": D(200)})
    mul = {"AOP": D(4), "KOGE": D(1), "TINY": D(2)}.get
    fixed = make_settings(target_token="AOP")
    assert counted_volume(fixed, uv, mul) == D(800)
    assert counted_volume(make_settings(target_token="AOP", volume_basis="traded"), uv, mul) == 200
    some = make_settings(target_token="auto", candidates=("AOP", "TINY", "LIGHT"))
    assert counted_volume(some, uv, mul) == D(1000)
    every = make_settings(target_token="AUTO")
    assert counted_volume(every, uv, mul) == D(1300)
    traded = make_settings(target_token="auto", volume_basis="traded")
    assert counted_volume(traded, uv, mul) == D(200) + D(300) + D(100)


def test_jitter_draws_afresh_within_its_bounds_and_replays_from_a_seed() -> None:
    import random

    from userproc.jitter import Jitter

    j = Jitter(random.Random(5))
    amounts = [j.amount(D(30), D(20)) for _ in range(200)]
    assert all(D(24) <= a <= D(36) for a in amounts) and len(set(amounts)) > 100
    assert min(amounts) < D(26) and max(amounts) > D(34)
    pauses = [j.interval(1.0, 2.0) for _ in range(200)]
    assert all(0.0 <= p <= 3.0 for p in pauses) and len(set(pauses)) > 100
    again = Jitter(random.Random(5))
    assert [again.amount(D(30), D(20)) for _ in range(200)] == amounts
    off = Jitter(random.Random(5))
    assert off.amount(D(30), D(0)) == D(30) and off.interval(1.5, 0.0) == 1.5


async def test_a_strategy_stopped_before_its_turn_never_begins_and_the_next_one_does() -> None:
    life = Lifecycle()
    life.to(Phase.RECONCILING)
    life.drain("stop koge", strategy="koge")  # stopped while queued
    with pytest.raises(StopRequested):
        life.begin_strategy("koge", grace_seconds=30)
    life.begin_strategy("aop", grace_seconds=30)  # the user's next strategy still runs
    assert life.phase("aop") is Phase.CHECKING and not life.stopping("aop")
    life.end("done")


def test_the_balance_floor_cuts_a_batch_to_what_keeps_the_day_above_it() -> None:
    from userproc.balance import allowed_volume
    from userproc.errors import LowBalance

    per = D("0.0002")  # 2 bp per credited USDT
    assert allowed_volume(D(101), D(100), D(16384), per, D(30)) == D(2500)  # 1 USDT / 2 / 2 bp
    assert allowed_volume(D(101), D(100), D(1000), per, D(30)) == D(1000)
    with pytest.raises(LowBalance, match="one more round trip"):
        allowed_volume(D("100.01"), D(100), D(1000), per, D(30))  # 25 of credit fit, not 30
    with pytest.raises(LowBalance, match=r"eligible balance 60\.00 USDT .* is under"):
        allowed_volume(D(60), D(100), D(1000), per, D(30))
