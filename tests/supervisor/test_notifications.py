"""Notifications from a real supervisor (`alphavol run`) with real user processes trading
on the simulated exchange, to a real local HTTP receiver (Apprise's ``json://``)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from tests.notify_receiver import TOKEN, Receiver
from tests.supervisor.harness import Deployment, strategy, time_status
from tests.supervisor.test_real_users import FAST

OWNERS = {"1": "notify-owner-one", "2": "notify-owner-two", "3": "notify-owner-three"}


def notify_section(rx: Receiver, **more) -> dict:
    return {"notify": {"urls": [rx.url()], **more}}


def stored_secrets(sim) -> set[str]:
    return {v for a in OWNERS.values() for v in sim.credentials(a).secret_values()}


def about(rx: Receiver, user: str) -> list[dict]:
    return [m for m in rx.messages(f"user {user} needs you") if m]


async def test_expiry_challenge_and_balance_each_send_one_message_without_secrets(deploy, sim):
    async with Receiver() as rx:
        d: Deployment = deploy()
        d.store({u: sim.credentials(a) for u, a in OWNERS.items()})
        d.write_config(
            [strategy("koge", list(OWNERS), target=10**9, amount=10)],
            sections=notify_section(rx),
        )
        d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
        await d.wait_ready()
        await d.trading("123")
        t0 = time.monotonic()
        await sim.admin.set_faults(session_expired=[OWNERS["1"]], risk_challenge=[OWNERS["2"]])

        async def each_told():
            # user 3's wallet drained until it finds it short: drained while its buy is
            # open, the round trip's sell brings the USDT back and it trades on
            if not about(rx, "3"):
                await sim.admin.set_balance(OWNERS["3"], "USDT", Decimal(5))
            return all(about(rx, u) for u in OWNERS)

        await d.until(each_told, 20, "a message about each user")
        assert time.monotonic() - t0 < 20
        users = await d.wait_users(
            lambda us: all(us[("koge", u)].state == "FATAL" for u in OWNERS), 10, "all FATAL"
        )
        d.signal(15)
        assert await d.wait_exit(30) == 0, d.diagnose()
        # "stopped" was queued after every user message: once it is in, nothing is pending
        await rx.wait(lambda r: r.messages("supervisor stopped"), 10, "the stopped message")

    for user, words in (
        ("1", "session expired"),
        ("2", "risk challenge"),
        ("3", "insufficient balance"),
    ):
        got = about(rx, user)
        assert len(got) == 1, got  # exactly one, however often the process said so
        assert words in got[0]["title"]
        body = got[0]["message"]
        assert f"User {user} stopped" in body and "koge (KOGE)" in body
        assert f"alphavol start --user {user}" in body
        assert users[("koge", user)].reason  # the status says why, too
    assert len(rx.messages("supervisor started")) == 1
    everything = "\n".join(p["body"] for p in rx.posts)
    for secret in stored_secrets(sim):
        assert secret not in everything
    assert TOKEN not in d.stderr + d.stdout  # the URL's token is never logged
    sent = d.events("notify_sent")
    assert len(sent) >= 5 and all(e["channel"].startswith("#1 json://127.0.0.1") for e in sent)


async def trades_per_second(d: Deployment, users: tuple[str, ...], seconds: float) -> float:
    """Round trips per second of ``users`` over a window of ``seconds`` (a measurement:
    the window is the point, nothing waits on it)."""

    async def count() -> int:
        us = await d.users()
        return sum(us[("koge", u)].trades for u in users)

    n0, t0 = await count(), time.monotonic()
    await asyncio.sleep(seconds)
    return (await count() - n0) / (time.monotonic() - t0)


@pytest.mark.parametrize("mode", ["hang", "fail"])
async def test_a_hanging_or_failing_channel_does_not_slow_the_others(deploy, sim, mode):
    async with Receiver() as rx:
        d: Deployment = deploy()
        d.store({u: sim.credentials(a) for u, a in OWNERS.items()})
        d.write_config(
            [strategy("koge", list(OWNERS), target=10**9, amount=10)],
            sections=notify_section(rx, timeout_seconds=30, retries=3),
        )
        d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
        await d.wait_ready()
        await d.trading("123")
        await rx.wait(lambda r: r.messages("supervisor started"), 10, "the started message")
        with_ok = await trades_per_second(d, ("1", "2"), 1.5)
        rx.mode = mode
        await sim.admin.set_faults(session_expired=[OWNERS["3"]])
        await rx.wait(lambda r: about(r, "3"), 10, "the message about user 3 (now stuck)")
        took = await time_status(d, 5)
        with_stuck = await trades_per_second(d, ("1", "2"), 1.5)
        assert with_stuck >= 0.5 * with_ok, (with_ok, with_stuck)
        assert took[-1] < 0.2, took  # the control socket answers as before
        t0 = time.monotonic()
        d.signal(15)
        assert await d.wait_exit(30) == 0, d.diagnose()
        assert time.monotonic() - t0 < 15, d.diagnose()  # a stuck channel: a few s at most
    assert TOKEN not in d.stderr + d.stdout


async def test_notify_test_sends_to_every_url_and_names_the_one_that_failed(deploy, sim):
    async with Receiver() as good, Receiver(mode="fail") as bad:
        d: Deployment = deploy()
        d.write_config(
            [strategy("koge", ["1"], target=100)],
            sections={"notify": {"urls": [good.url(), bad.url("bad-" + TOKEN)], "retries": 1}},
        )
        res = await d.acli("notify", "test")
        assert res.returncode == 1, res.stderr
        lines = res.stdout.splitlines()
        assert lines[0] == f"#1 json://127.0.0.1:{good.port}: sent"
        assert lines[1].startswith(f"#2 json://127.0.0.1:{bad.port}: FAILED")
        assert [m["title"] for m in good.messages()] == ["alphavol: test message"]
        assert len(bad.posts) == 1  # it was tried, and answered 500
        assert TOKEN not in res.stdout + res.stderr
        good.mode = "ok"
        bad.mode = "ok"
        assert (await d.acli("notify", "test")).returncode == 0
        d.write_config([strategy("koge", ["1"], target=100)])
        none = await d.acli("notify", "test")
        assert none.returncode == 2 and "notify.urls" in none.stderr


async def test_a_strategy_that_cannot_run_and_a_user_that_keeps_crashing(deploy, sim):
    async with Receiver() as rx:
        d: Deployment = deploy()
        d.store({u: sim.credentials(a) for u, a in OWNERS.items()})
        both = [strategy("nope", ["1"], target=10**6), strategy("koge", ["1"], target=50)]
        d.write_config(both, sections=notify_section(rx))
        d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
        # `run` refuses a token the exchange does not list: it comes with a reload
        await d.wait_users(lambda us: us[("nope", "1")].trades >= 1, 30, "user 1 trading")
        both[0] = {**both[0], "target_token": "NOPE"}  # no such token
        d.write_config(both, sections=notify_section(rx))
        assert (await d.acli("reload")).returncode == 0
        (msg,) = await rx.wait(lambda r: about(r, "1"), 20, "the bad setup message")
        assert "bad setup" in msg["title"]
        assert "Strategy: nope (NOPE)" in msg["message"] and "alphavol check" in msg["message"]
        await d.wait_users(lambda us: us[("koge", "1")].state == "FATAL", 20, "user 1 done")
        d.signal(15)
        assert await d.wait_exit(30) == 0, d.diagnose()
        assert len(about(rx, "1")) == 1  # the exit that followed (BAD_CONFIG) said nothing new

        crashing: Deployment = deploy()
        crashing.store({"2": sim.credentials(OWNERS["2"])})
        crashing.write_config([strategy("s1", ["2"], target=2000)], sections=notify_section(rx))
        crashing.start(
            ALPHAVOL_STANDIN='{"trade_seconds": 0.02, "crash_users": ["2"]}',
            ALPHAVOL_CRASH_LIMIT="2",
        )
        (msg,) = await rx.wait(lambda r: about(r, "2"), 20, "the crash limit message")
        assert "crash limit" in msg["title"] and "crashed 3 times" in msg["message"]
        assert await crashing.wait_exit(30) == 1  # --once with a FATAL user


async def test_a_balance_under_the_floor_stops_the_user_for_the_day_and_says_so(deploy, sim):
    async with Receiver() as rx:
        d: Deployment = deploy()
        d.store({"1": sim.credentials(OWNERS["1"])})
        await sim.admin.set_balance(OWNERS["1"], "USDT", Decimal(60))
        d.write_config([strategy("koge", ["1"], target=300)], sections=notify_section(rx))
        d.start(once=True, child=None, ALPHAVOL_TUNING=FAST)
        (msg,) = await rx.wait(lambda r: about(r, "1"), 20, "the low balance message")
        assert await d.wait_exit(30) == 1, d.diagnose()  # --once: short of its target
    assert "low balance" in msg["title"]
    body = msg["message"]
    assert "Strategy: koge (KOGE)" in body and "eligible balance 60.00 USDT" in body, body
    assert "min_balance_usdt 100" in body and "alphavol start --user 1" in body
    assert (await sim.admin.account(OWNERS["1"]))["oto_count"] == 0
    assert "user 1 koge: STOPPED" in d.stdout, d.stdout
