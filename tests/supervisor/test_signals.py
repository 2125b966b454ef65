"""Signals to a real `alphavol run`, and what its (stand-in) user processes receive.

SIGINT/SIGTERM once = drain every user (a repeated drain stays a drain), twice = StopNow;
SIGHUP without a controlling terminal (systemd) = reload. The stand-in records every
command it gets (``tests.supervisor.standin.commands_of``)."""

from __future__ import annotations

import json
import signal
import time
from decimal import Decimal

from tests.supervisor.harness import Deployment, strategy, wait_gone


async def two_users(deploy, sim, *, grace: float, once: bool = True, **standin) -> Deployment:
    """Users 1 and 2 trading on stand-ins (``standin``: knobs of tests.supervisor.standin)."""
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in "12"})
    d.write_config([strategy("s1", ["1", "2"], target=100000, amount=10, stop_grace_seconds=grace)])
    d.start(once=once, ALPHAVOL_STANDIN=json.dumps({"trade_seconds": 0.05, **standin}))
    await d.wait_ready()
    return d


async def wait_commands(d, pred, what: str) -> dict[str, list[str]]:
    async def check():
        got = {u: d.commands(u) for u in "12"}
        return got if all(pred(c) for c in got.values()) else None

    return await d.until(check, 10, what)


async def test_one_sigterm_drains_and_a_repeated_drain_never_becomes_stop_now(deploy, sim):
    # finishing the trade in progress takes 2.5 s: heartbeats re-send Drain meanwhile
    d = await two_users(deploy, sim, grace=5, drain_seconds=2.5)
    users = await d.trading("12")
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    await wait_commands(d, lambda c: "Drain" in c, "Drain at both users")
    res = await d.acli("shutdown")  # asking for a drain again changes nothing
    assert res.returncode == 0, res.stderr
    assert await d.wait_exit(20) == 0
    assert time.monotonic() - t0 >= 2.5  # the trade in progress was finished, not cut short
    for u in "12":
        got = d.commands(u)
        assert "StopNow" not in got, (u, got)
        assert got.count("Drain") >= 2, (u, got)  # re-sent with the heartbeats, still a drain
    assert [e["mode"] for e in d.events("stopping")] == ["drain"]
    assert await wait_gone([u.pid for u in users.values()], 2) == []
    assert "user 1 s1: STOPPED" in d.stdout and "drained on request" in d.stdout


async def test_a_second_sigterm_escalates_to_stop_now(deploy, sim):
    d = await two_users(deploy, sim, grace=60, drain_seconds=60)
    await d.trading("12")
    d.signal(signal.SIGTERM)
    await wait_commands(d, lambda c: "Drain" in c, "Drain at both users")
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    assert await d.wait_exit(20) == 0
    assert time.monotonic() - t0 < 5  # not the 60 s drain
    for u in "12":
        got = d.commands(u)
        assert got[0] == "Drain" and "StopNow" in got, (u, got)
        assert set(got[got.index("StopNow") :]) == {"StopNow"}, (u, got)
    assert [e["mode"] for e in d.events("stopping")] == ["drain", "now"]
    assert "stopped now" in d.stdout


async def test_sighup_without_a_terminal_reloads_and_a_refused_reload_says_why(deploy, sim):
    d = await two_users(deploy, sim, grace=2, once=False)  # in a new session: no terminal
    before = await d.trading("12")
    d.write_config([strategy("s1", ["1", "2"], target=200000, amount=10)])
    d.signal(signal.SIGHUP)
    after = await d.wait_users(
        lambda us: all(u.target_volume == Decimal(200000) for u in us.values()), 10, "reloaded"
    )
    # applied in place: same processes, still running, told the new settings, not stopped
    assert {k: u.pid for k, u in after.items()} == {k: u.pid for k, u in before.items()}
    assert all(u.state == "RUNNING" for u in after.values())
    await wait_commands(d, lambda c: "UpdateSettings" in c, "UpdateSettings at both")
    assert len(d.events("config_reloaded")) == 1

    d.config_path.write_text(d.config_path.read_text().replace("target_volume: 200000", "x: ["))
    d.signal(signal.SIGHUP)

    async def refused():
        return d.events("reload_refused")

    (event,) = await d.until(refused, 10, "the refused reload logged")
    assert event["level"] == "error" and event["errors"], event
    assert any("config.yaml" in line for line in event["errors"]), event
    assert all(u.state == "RUNNING" for u in (await d.users()).values())
    assert not d.events("stopping")
    for u in "12":
        assert "Drain" not in d.commands(u) and "StopNow" not in d.commands(u)
    d.signal(signal.SIGTERM)
    assert await d.wait_exit(20) == 0
    # no `"reason": null` noise in any supervisor line
    lines = [json.loads(x) for x in d.stderr.splitlines() if x.startswith("{")]
    assert lines and not [x for x in lines if "reason" in x and x["reason"] is None]
