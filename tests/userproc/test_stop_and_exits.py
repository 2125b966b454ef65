"""One way to stop and one table of exit statuses (issue 24): every wait the trading code
uses raises ``StopRequested`` on a stop, and how a run ended maps to the status the
supervisor acts on (restart, stop for the day, pause) in one place."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal as D

import pytest

from protocol.exitcodes import Exit
from userproc.errors import (
    BadReplies,
    BadSetup,
    CostCapReached,
    ExchangeDown,
    JournalUnreadable,
    JournalUnusable,
    LeftoverError,
    LowBalance,
    OrdersRejected,
    StrategyFailed,
    UserStop,
    VolumeNotCounted,
)
from userproc.exits import Ending, ending_of, finished, unfinished, with_forced
from userproc.lifecycle import Lifecycle, Phase, StopRequested


def _trading(grace: float = 30) -> Lifecycle:
    life = Lifecycle()
    life.to(Phase.RECONCILING)
    life.begin_strategy("koge", grace_seconds=grace)
    return life


async def test_a_drain_ends_a_sleep_at_once_with_stop_requested() -> None:
    life = _trading()
    asyncio.get_running_loop().call_later(0.05, life.drain, "supervisor asked to drain")
    t0 = time.monotonic()
    with pytest.raises(StopRequested) as caught:
        await life.sleep(30, "koge")
    assert time.monotonic() - t0 < 5  # not the 30 s asked for
    assert caught.value.reason == "supervisor asked to drain"
    with pytest.raises(StopRequested):  # and a sleep begun while stopping does not wait at all
        await life.sleep(30, "koge")
    life.end("stopped")


async def test_a_drain_honours_an_exchange_wait_and_now_cuts_it_short() -> None:
    life = _trading()
    life.drain("drain")
    await life.sleep_unless_now(0.05, "koge", doing="waiting on ticker")  # no raise: drain
    asyncio.get_running_loop().call_later(0.05, life.now, "supervisor asked to stop now")
    t0 = time.monotonic()
    with pytest.raises(StopRequested) as caught:
        await life.sleep_unless_now(30, "koge", doing="waiting on ticker")
    assert time.monotonic() - t0 < 5
    assert caught.value.reason == "drain (while waiting on ticker)"
    life.end("stopped")


async def test_until_tells_the_event_from_the_timeout_and_a_stop_raises() -> None:
    life = _trading()
    up = asyncio.Event()
    assert await life.until(up, 0.05, "koge") is False  # nobody set it in time
    asyncio.get_running_loop().call_later(0.02, up.set)
    assert await life.until(up, 30, "koge") is True
    down = asyncio.Event()
    life.drain("stop koge", strategy="koge")
    with pytest.raises(StopRequested):
        await life.until(down, 30, "koge")
    assert await life.until(up, 30, "koge") is True  # what already happened still counts
    life.end("stopped")


async def test_the_gate_raises_only_for_whom_the_stop_applies() -> None:
    life = _trading()
    life.begin_strategy("aop", grace_seconds=30)
    life.drain("stop koge", strategy="koge")
    life.check("aop")
    life.check()  # the process goes on
    with pytest.raises(StopRequested):
        life.check("koge")
    life.end("stopped")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (StopRequested("drain"), Exit.OK),
        (ExchangeDown("down"), Exit.EXCHANGE_DOWN),
        (BadReplies("NaN"), Exit.BAD_REPLY),
        (StrategyFailed("unknown token"), Exit.BAD_CONFIG),
        (OrdersRejected("refused"), Exit.BAD_CONFIG),
        (VolumeNotCounted("flat"), Exit.BAD_CONFIG),
        (CostCapReached("cap"), Exit.COST_CAP),
        (LowBalance("floor"), Exit.LOW_BALANCE),
        (BadSetup("no strategy"), Exit.BAD_CONFIG),
        (JournalUnreadable("corrupt"), Exit.BAD_CONFIG),
        (JournalUnusable("disk full"), Exit.CRASH),
        (UserStop("user stream ended"), Exit.CRASH),
        (RuntimeError("bug"), Exit.CRASH),
    ],
)
def test_each_way_a_run_ends_has_its_exit_status(exc: Exception, code: Exit) -> None:
    ending = ending_of(exc, "u1")
    assert ending.exit is code and ending.cleanup
    if isinstance(exc, UserStop):
        assert ending.reason == exc.reason


def test_leftovers_a_lost_supervisor_and_unfinished_trips_decide_over_ok() -> None:
    left = ending_of(LeftoverError("ALPHA_22", "KOGE", D("1.5")), "u1")
    assert left.exit is Exit.LEFTOVER and left.leftovers[0].quantity == D("1.5")
    assert finished("drain", stopping=True) == Ending(Exit.OK, "drain")
    assert finished(None, stopping=False) == Ending(Exit.OK, "target reached")
    lost = with_forced(finished("supervisor lost", True), Exit.SUPERVISOR_LOST, "supervisor lost")
    assert lost.exit is Exit.SUPERVISOR_LOST
    assert with_forced(left, Exit.SUPERVISOR_LOST, "x").exit is Exit.LEFTOVER  # an error stays
    cut = unfinished(Ending(Exit.OK, "drain"), 1, [])
    assert cut.exit is Exit.LEFTOVER and "1 round trip(s) could not be finished" in cut.reason
    shut_out = unfinished(Ending(Exit.SESSION_EXPIRED, "expired", cleanup=False), 1, [])
    assert shut_out.exit is Exit.SESSION_EXPIRED
