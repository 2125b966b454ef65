"""``alphavol run`` in a terminal, as an operator meets it: a real pseudo-terminal, real
user processes trading on the simulated exchange, a sell that takes 3 s to fill.

* one Ctrl+C drains: the round trip in progress finishes at its planned prices (the sim
  records no cancelled order), exit 0, nothing open or unsold;
* two Ctrl+C stop now: cancel and sell at once, exit 0, nothing open or unsold;
* closing the terminal: every process of the run exits, nothing open or unsold.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from tests.supervisor.harness import Deployment, Terminal, pids_alive, strategy, wait_gone
from tests.supervisor.test_real_users import FAST, acct, token_value

SELL_SECONDS = 3.0


@pytest.fixture
async def sim():
    from exchange.sim.testing import SimHarness

    async with SimHarness(fill_delay=0, sell_fill_delay=SELL_SECONDS) as h:
        yield h


def _deploy(sim, tmp_users: list[str]) -> Deployment:
    d = Deployment(base_url=sim.base_url, ws_url=sim.ws_url)
    d.store({u: sim.credentials(acct(u)) for u in tmp_users})
    d.write_config([strategy("koge", tmp_users, target=100000, amount=10, stop_grace_seconds=30)])
    return d


async def _selling(sim, users: list[str], within: float = 30) -> None:
    """Until every user has a round trip whose buy filled and whose sell is open."""
    engine = sim.sim

    def all_selling() -> bool:
        for u in users:
            acc = engine.accounts.get(acct(u))
            if acc is None or not any(
                o.position == "OTO_PENDING" and o.status == "NEW" for o in acc.orders
            ):
                return False
        return True

    async with asyncio.timeout(within):
        while not all_selling():  # noqa: ASYNC110 - the sim offers no event for this
            await asyncio.sleep(0.02)


async def _clean(sim, users: list[str]) -> list[dict]:
    out = []
    for u in users:
        a = await sim.admin.account(acct(u))
        assert a["open_orders"] == 0, u
        assert token_value(a) < Decimal("0.1"), u  # dust at most
        out.append(a)
    return out


async def _exit(d: Deployment, term: Terminal, within: float) -> int:
    try:
        return await d.wait_exit(within)
    finally:
        term.close()


async def test_one_ctrl_c_drains_at_the_planned_prices(sim):
    users = ["1", "2"]
    d = _deploy(sim, users)
    try:
        term = d.start_on_terminal(child=None, ALPHAVOL_TUNING=FAST)
        await _selling(sim, users)
        t0 = time.monotonic()
        term.type(b"\x03")
        assert await _exit(d, term, 30) == 0, term.output[-3000:]
        assert time.monotonic() - t0 >= SELL_SECONDS * 0.5  # it waited for the sells
        for a in await _clean(sim, users):
            statuses = {o["status"] for o in a["orders"]}
            assert statuses == {"FILLED"}, statuses  # finished, nothing cancelled
    finally:
        d.cleanup()


async def test_two_ctrl_c_stop_at_once_and_still_clean(sim):
    users = ["1"]
    d = _deploy(sim, users)
    try:
        term = d.start_on_terminal(child=None, ALPHAVOL_TUNING=FAST)
        await _selling(sim, users)
        t0 = time.monotonic()
        term.type(b"\x03")
        await d.wait_users(lambda us: all(u.state == "STOPPING" for u in us.values()), 10, "drain")
        term.type(b"\x03")
        assert await _exit(d, term, 30) == 0, term.output[-3000:]
        # cancelled and sold: no waiting out the 30 s grace
        assert time.monotonic() - t0 < 2 * SELL_SECONDS + 5
        (a,) = await _clean(sim, users)
        assert any(o["status"] == "CANCELED" for o in a["orders"])  # the OTO's sell
    finally:
        d.cleanup()


async def test_closing_the_terminal_ends_every_process_and_leaves_nothing(sim):
    users = ["1", "2"]
    d = _deploy(sim, users)
    try:
        term = d.start_on_terminal(child=None, ALPHAVOL_TUNING=FAST)
        await _selling(sim, users)
        pids = [d.proc.pid] + [u.pid for u in (await d.users()).values() if u.pid]
        assert len(pids) == 3
        term.close()  # the window is closed: the kernel hangs up the session
        assert await wait_gone(pids, 40) == [], pids_alive(pids)
        await _clean(sim, users)
    finally:
        d.cleanup()


@pytest.mark.parametrize("how", ["sigterm", "shutdown"])
async def test_stop_and_shutdown_drain_within_the_grace_then_cancel_and_sell(sim, how):
    """``stop --user 1`` drains user 1 alone; then SIGTERM to the supervisor (or
    ``shutdown``) drains the rest. Users 1 and 3 finish their round trips at the planned
    prices; user 2's OTO sell never fills, so after its 2 s grace it is cancelled and the
    tokens sold. Exit 0, nothing open or unsold for anyone."""
    users = ["1", "2", "3"]
    d = Deployment(base_url=sim.base_url, ws_url=sim.ws_url)
    d.store({u: sim.credentials(acct(u)) for u in users})
    d.write_config(
        [
            strategy("koge", ["1", "3"], target=100000, amount=10, stop_grace_seconds=30),
            strategy("hang", ["2"], target=100000, amount=10, stop_grace_seconds=2),
        ]
    )
    await sim.admin.set_faults(stuck_oto_sells=[acct("2")])  # user 2's OTO sells never fill
    try:
        d.start(child=None, ALPHAVOL_TUNING=FAST)
        await _selling(sim, users)
        res = await d.acli("stop", "koge", "--user", "1")
        assert res.returncode == 0, res.stderr
        await d.wait_users(lambda us: us[("koge", "1")].state == "STOPPED", 20, "user 1 drained")
        assert (await d.users())[("koge", "3")].state == "RUNNING"
        if how == "sigterm":
            d.signal(15)
        else:
            res = await d.acli("shutdown")
            assert res.returncode == 0, res.stderr
        assert await d.wait_exit(40) == 0, d.diagnose()
        one, two, three = await _clean(sim, users)
        for a in (one, three):
            assert {o["status"] for o in a["orders"]} == {"FILLED"}  # nothing cancelled
        assert any(o["status"] == "CANCELED" for o in two["orders"])  # after its grace
        assert not d.events("stop_now") or all(
            e.get("user_id") == "2" for e in d.events("stop_now")
        )
    finally:
        d.cleanup()
