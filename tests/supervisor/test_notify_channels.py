"""Notification channels are independent of each other: a real supervisor with real users
trading on the sim, one channel that answers 200 and then drips its body one byte every
2 s, one that is dead (nothing listens), one healthy; and `alphavol notify test` with
the same three."""

from __future__ import annotations

import time

from tests.notify_receiver import TOKEN, Receiver
from tests.supervisor.harness import Deployment, strategy
from tests.supervisor.test_metrics import free_port
from tests.supervisor.test_real_users import FAST

OWNERS = {"1": "chan-owner-one", "2": "chan-owner-two", "3": "chan-owner-three"}
HEALTHY_WITHIN = 10.0  # seconds from an event to its message on the healthy channel


def three_urls(slow: Receiver, ok: Receiver) -> list[str]:
    dead = f"json://127.0.0.1:{free_port()}/dead-{TOKEN}"
    return [slow.url("slow-" + TOKEN), ok.url(), dead]


def about(rx: Receiver, user: str) -> list[dict]:
    return rx.messages(f"user {user} needs you")


async def test_a_dripping_and_a_dead_channel_cost_the_healthy_one_nothing(deploy, sim):
    async with Receiver(mode="drip") as slow, Receiver() as ok:
        d: Deployment = deploy()
        d.store({u: sim.credentials(a) for u, a in OWNERS.items()})
        d.write_config(
            [strategy("koge", list(OWNERS), target=10**9, amount=10)],
            sections={"notify": {"urls": three_urls(slow, ok), "timeout_seconds": 3, "retries": 2}},
        )
        d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
        await ok.wait(lambda r: r.messages("supervisor started"), HEALTHY_WITHIN, "started")
        await d.trading("123")
        await slow.wait(lambda r: r.posts, HEALTHY_WITHIN, "the dripping channel tried")

        t0 = time.monotonic()
        await sim.admin.set_faults(session_expired=[OWNERS["3"]])
        await ok.wait(lambda r: about(r, "3"), HEALTHY_WITHIN, "the message about user 3")
        assert time.monotonic() - t0 < HEALTHY_WITHIN
        t0 = time.monotonic()
        await sim.admin.set_faults(risk_challenge=[OWNERS["2"]])
        await ok.wait(lambda r: about(r, "2"), HEALTHY_WITHIN, "the message about user 2")
        assert time.monotonic() - t0 < HEALTHY_WITHIN

        async def dripping_failed():
            return [e for e in d.events("notify_failed") if e["channel"].startswith("#1")]

        await d.until(dripping_failed, 20, "the dripping channel's first failure")
        assert len(slow.posts) < len(ok.posts)  # it is still busy with an earlier message
        t0 = time.monotonic()
        d.signal(15)
        assert await d.wait_exit(10) == 0, d.diagnose()
        assert time.monotonic() - t0 < 3, d.diagnose()
        await ok.wait(lambda r: r.messages("supervisor stopped"), HEALTHY_WITHIN, "stopped")

    # one warning per failing channel, however many messages it failed
    warned = [e["channel"] for e in d.events("notify_failed") if e["level"] == "warning"]
    assert len(warned) == 2, warned
    assert warned[0] != warned[1] and {w[:2] for w in warned} == {"#1", "#3"}, warned
    assert len(d.events("notify_failed")) >= 4  # the rest at info
    assert TOKEN not in d.stderr + d.stdout


async def test_notify_test_answers_within_its_deadline_and_names_each_failed_channel(deploy):
    async with Receiver(mode="drip") as slow, Receiver() as ok:
        d: Deployment = deploy()
        d.write_config(
            [strategy("koge", ["1"], target=100)],
            sections={"notify": {"urls": three_urls(slow, ok), "timeout_seconds": 2}},
        )
        t0 = time.monotonic()
        res = await d.acli("notify", "test", within=60)
        took = time.monotonic() - t0
    assert res.returncode == 1, res.stderr
    assert took < 2 + 8, took  # the deadline, plus starting the senders on a busy machine
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"#1 json://127.0.0.1:{slow.port}: FAILED (no answer within 2 s")
    assert lines[1] == f"#2 json://127.0.0.1:{ok.port}: sent"
    assert lines[2].startswith("#3 json://127.0.0.1") and ": FAILED (" in lines[2]
    assert [m["title"] for m in ok.messages()] == ["alphavol: test message"]
    assert TOKEN not in res.stdout + res.stderr


async def test_a_failing_channel_is_one_warning_line_above_the_live_view(deploy, sim):
    async with Receiver(mode="fail") as bad:
        d: Deployment = deploy()
        d.store({u: sim.credentials(OWNERS[u]) for u in ("1", "2")})
        d.write_config(
            [strategy("koge", ["1", "2"], target=10**9, amount=10)],
            sections={"notify": {"urls": [bad.url()], "retries": 2, "timeout_seconds": 2}},
        )
        term = d.start_on_terminal(once=False, child=None, ALPHAVOL_TUNING=FAST)
        try:
            await d.wait_ready()
            await d.trading("12")
            await sim.admin.set_faults(session_expired=[OWNERS["2"]])
            # started and user 2's message, each tried twice (500 each time)
            await bad.wait(lambda r: len(r.posts) >= 4, 20, "both messages tried twice")
            t0 = time.monotonic()
            term.type(b"\x03")  # Ctrl+C: drain and exit
            assert await d.wait_exit(10) == 0
            assert time.monotonic() - t0 < 3
        finally:
            term.close()
    shown = term.output.decode(errors="replace")
    assert shown.count("notify_failed") == 1, shown[-3000:]
    assert "apprise" not in shown.lower()
    assert TOKEN not in shown
