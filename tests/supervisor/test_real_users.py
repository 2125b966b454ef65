"""The supervisor as a real subprocess with real user processes trading on the simulated
exchange (SimHarness in the test's loop)."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from decimal import Decimal

import pytest

from tests.supervisor.harness import strategy, time_status, wait_gone

FAST = json.dumps(
    {
        "settle_poll_seconds": 0.02,
        "rest_check_seconds": 0.5,
        "volume_reads": 1,
        "lookup_delay_seconds": 0.05,
        "volatility_wait_seconds": 0.05,
        "stream_initial_backoff": 0.05,
    }
)


def acct(u: str) -> str:
    return f"acct{u}"


def token_value(account: dict) -> Decimal:
    """USDT value (at the sim's KOGE price, about 48) of the KOGE tokens an account holds."""
    koge = account["balances"].get("ALPHA_22", {"free": "0", "locked": "0"})
    return (Decimal(koge["free"]) + Decimal(koge["locked"])) * Decimal("48")


def journal_otos(path) -> tuple[list[str], int]:
    """(working order ids of the round trips the journal recorded as placed, number of
    round-trip intents still unsettled) from a user's journal (``userproc/journal.py``)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        placed = [
            r[0] for r in db.execute("SELECT working_id FROM trades WHERE kind='oto' AND placed=1")
        ]
        (unsettled,) = db.execute(
            "SELECT COUNT(*) FROM trades WHERE kind='oto' AND placed=0"
        ).fetchone()
    finally:
        db.close()
    return placed, unsettled


async def test_three_users_one_at_target_is_skipped_two_trade_to_target(deploy, sim):
    await sim.admin.set_config(fill_delay=0.05)
    d = deploy()
    d.store({u: sim.credentials(acct(u)) for u in ("1", "2", "3")})
    await sim.admin.set_volume(acct("3"), "KOGE", Decimal(500))
    d.write_config([strategy("koge", ["1", "2", "3"], target=300, amount=10)])
    d.start(child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    users = await d.wait_users(
        lambda us: (
            all(us[("koge", u)].state == "RUNNING" for u in ("1", "2"))
            and all(us[("koge", u)].trades >= 1 for u in ("1", "2"))
        ),
        30,
        "users 1 and 2 trading at the same time",
    )
    assert users[("koge", "3")].state == "SKIPPED"
    assert users[("koge", "3")].pid is None
    took = await time_status(d, 10)  # while real user processes trade
    assert took[-1] < 0.1, took
    res = await d.acli("status")
    assert "SKIPPED" in res.stdout and "RUNNING" in res.stdout and "%" in res.stdout
    assert await d.wait_exit(60) == 0, d.diagnose()
    out = d.stdout
    assert "user 3: already at target, skipped" in out
    assert "user 1 koge: DONE" in out and "user 2 koge: DONE" in out
    for u in ("1", "2"):
        a = await sim.admin.account(acct(u))
        assert Decimal(a["volume_now"]["KOGE"]) >= 300
        assert a["open_orders"] == 0
    assert (await sim.admin.account(acct("3")))["oto_count"] == 0


async def test_a_user_killed_mid_trade_restarts_and_still_meets_its_target(deploy, sim):
    await sim.admin.set_config(fill_delay=0.1)
    d = deploy()
    d.store({u: sim.credentials(acct(u)) for u in ("1", "2")})
    d.write_config([strategy("koge", ["1", "2"], target=120, amount=10)])
    d.start(child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    users = await d.wait_users(
        lambda us: us[("koge", "1")].trades >= 2 and us[("koge", "1")].pid, 30, "user 1 trading"
    )
    victim = users[("koge", "1")].pid
    import os

    os.kill(victim, signal.SIGKILL)
    assert await d.wait_exit(90) == 0, d.diagnose()
    backoff = [
        e for e in d.events("user_state_changed") if e["user_id"] == "1" and e["dst"] == "BACKOFF"
    ]
    assert len(backoff) == 1 and "signal 9" in backoff[0]["reason"]
    assert not [
        e for e in d.events("user_state_changed") if e["user_id"] == "2" and e["dst"] == "BACKOFF"
    ]
    assert "user 1 koge: DONE" in d.stdout and "restarts 1" in d.stdout
    for u in ("1", "2"):
        a = await sim.admin.account(acct(u))
        vol = Decimal(a["volume_now"]["KOGE"])
        assert vol >= 120
        assert a["open_orders"] == 0
        # no OTO placed twice, none unaccounted for: the journal's placed OTOs are exactly
        # the sim's, and every intent was settled (placed or certainly not placed)
        placed, unsettled = journal_otos(d.data / "journals" / f"user-{u}.sqlite")
        on_sim = [o["order_id"] for o in a["orders"] if o["position"] == "OTO_WORKING"]
        assert unsettled == 0
        assert len(placed) == len(set(placed)) == len(on_sim) == a["oto_count"]
        assert set(placed) == set(on_sim)


async def test_sigint_with_orders_open_drains_everyone_cleanly(deploy, sim):
    await sim.admin.set_config(fill_delay=0.3)
    d = deploy()
    d.store({u: sim.credentials(acct(u)) for u in ("1", "2", "3")})
    d.write_config([strategy("koge", ["1", "2", "3"], target=100000, amount=10)])
    d.start(child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    users = await d.wait_users(
        lambda us: all(u.trades >= 1 for u in us.values()), 30, "all three trading"
    )
    # a reload that removes user 3: it drains (STOPPING), is gone, and leaves nothing open
    removed = users.pop(("koge", "3")).pid
    d.write_config([strategy("koge", ["1", "2"], target=100000, amount=10)])
    d.signal(signal.SIGHUP)
    await d.wait_users(lambda us: ("koge", "3") not in us, 20, "user 3 removed")
    assert await wait_gone([removed], 5) == []
    user3 = [e["dst"] for e in d.events("user_state_changed") if e["user_id"] == "3"]
    assert user3[-1] == "STOPPING" and "BACKOFF" not in user3, user3
    a = await sim.admin.account(acct("3"))
    assert a["open_orders"] == 0 and token_value(a) < Decimal("0.1")
    assert all(u.state == "RUNNING" for u in (await d.users()).values())
    pids = [u.pid for u in users.values()]
    d.signal(signal.SIGINT)
    assert await d.wait_exit(30) == 0, d.diagnose()
    assert await wait_gone(pids, 2) == []
    for u in ("1", "2"):
        a = await sim.admin.account(acct(u))
        assert a["open_orders"] == 0
        assert token_value(a) < Decimal("0.1")  # dust at most
    assert "STOPPED" in d.stdout


async def test_second_sigint_stops_at_once_and_still_cleanly(deploy, sim):
    await sim.admin.set_config(fill_delay=0.3)
    d = deploy()
    d.store({u: sim.credentials(acct(u)) for u in ("1", "2")})
    d.write_config([strategy("koge", ["1", "2"], target=100000, amount=10, stop_grace_seconds=60)])
    d.start(child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    await d.wait_users(lambda us: all(u.trades >= 1 for u in us.values()), 30, "both trading")
    d.signal(signal.SIGINT)
    await d.wait_users(lambda us: all(u.state == "STOPPING" for u in us.values()), 10, "draining")
    t0 = time.monotonic()
    d.signal(signal.SIGINT)
    assert await d.wait_exit(30) == 0, d.diagnose()
    assert time.monotonic() - t0 < 15
    for u in ("1", "2"):
        a = await sim.admin.account(acct(u))
        assert a["open_orders"] == 0
        assert token_value(a) < Decimal("0.1")  # dust at most


@pytest.mark.serial
async def test_supervisor_sigkill_real_users_stop_trading_at_once(deploy, sim):
    """SIGKILL of the supervisor with two users trading (fills take 1.5 s): no new OTO
    more than 1 s after the kill, every user process gone within 5 s, nothing open and
    nothing unsold; a new supervisor then takes over and finishes the job."""
    await sim.admin.set_config(fill_delay=1.5)
    d = deploy()
    d.store({u: sim.credentials(acct(u)) for u in ("1", "2")})
    d.write_config([strategy("koge", ["1", "2"], target=100000, amount=10)])
    d.start(child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    users = await d.wait_users(
        lambda us: all(u.trades >= 1 and u.pid for u in us.values()), 30, "both trading"
    )
    pids = [u.pid for u in users.values()]
    killed_ms = sim.sim.clock.now_ms()
    t0 = time.monotonic()
    d.signal(signal.SIGKILL)
    await d.wait_exit(5)
    assert await wait_gone(pids, 5.0) == [], "user processes outlived their supervisor by 5 s"
    assert time.monotonic() - t0 < 5.0
    for u in ("1", "2"):
        a = await sim.admin.account(acct(u))
        late = [
            o["created_ms"] - killed_ms
            for o in a["orders"]
            if o["position"] == "OTO_WORKING" and o["created_ms"] > killed_ms + 1000
        ]
        assert not late, f"user {u} placed OTOs {late} ms after the kill"
        assert a["open_orders"] == 0
        assert token_value(a) < Decimal("0.1")  # dust at most
    # a new supervisor takes over the stale sockets and finishes the job
    now = Decimal(0)
    for u in ("1", "2"):
        volume = (await sim.admin.account(acct(u)))["volume_now"].get("KOGE", "0")
        now = max(now, Decimal(volume))  # status counts OTOs placed: none may have filled
    await sim.admin.set_config(fill_delay=0.05)
    d.write_config([strategy("koge", ["1", "2"], target=int(now) + 30, amount=10)])
    d.start(child=None, ALPHAVOL_TUNING=FAST)
    assert await d.wait_exit(60) == 0, d.diagnose()
    assert d.events("previous_supervisor_died")
    assert "user 1 koge: DONE" in d.stdout and "user 2 koge: DONE" in d.stdout


async def test_an_expired_session_is_fatal_at_the_check_and_the_others_still_run(deploy, sim):
    await sim.admin.set_faults(session_expired=[acct("2")])
    d = deploy()
    creds = {u: sim.credentials(acct(u)) for u in ("1", "2")}
    d.store(creds)
    d.write_config([strategy("koge", ["1", "2"], target=60, amount=10)])
    d.start(child=None, ALPHAVOL_TUNING=FAST)
    assert await d.wait_exit(60) == 1, d.diagnose()  # --once with a FATAL user
    out = d.stdout
    assert "user 1 koge: DONE" in out
    assert "user 2 koge: FATAL" in out and "session expired" in out
    assert "`alphavol users add 2 --curl FILE` and `alphavol start --user 2`" in out, out
    assert not [e for e in d.events("user_process_started") if e["user_id"] == "2"]
    assert (await sim.admin.account(acct("2")))["oto_count"] == 0
    for secret in creds["2"].secret_values() + creds["1"].secret_values():
        assert secret not in d.stdout and secret not in d.stderr


async def test_a_users_strategies_side_by_side_through_the_supervisor(deploy, sim):
    """``parallel_strategies: true`` in the config: the user's KOGE and AOP round trips
    are open at the same time, and both targets are met within one trade each."""
    await sim.admin.set_config(fill_delay=0.05)
    d = deploy()
    d.store({"1": sim.credentials(acct("1"))})
    d.write_config(
        [
            strategy("koge", ["1"], target=100, amount=10),
            strategy("aop", ["1"], target=400, amount=10, token="AOP"),
        ],
        parallel_strategies=True,
    )
    d.start(child=None, ALPHAVOL_TUNING=FAST)
    assert await d.wait_exit(60) == 0, d.diagnose()
    a = await sim.admin.account(acct("1"))
    assert a["open_orders"] == 0
    spans = {"KOGE": [], "AOP": []}
    for o in a["orders"]:
        if o["position"] == "OTO_WORKING":
            end = max([o["created_ms"]] + [h["time_ms"] for h in o["history"]])
            spans[o["token"]].append((o["created_ms"], end))
    assert any(k0 < a1 and a0 < k1 for k0, k1 in spans["KOGE"] for a0, a1 in spans["AOP"])
    assert 100 <= Decimal(a["volume_now"]["KOGE"]) < 100 + 10
    assert 400 <= Decimal(a["volume_now"]["AOP"]) < 400 + 40
