"""When something goes wrong inside the supervisor, or a user ends badly: a real
`alphavol run` with stand-in user processes.

* a task of the supervisor that raises (injected with ALPHAVOL_FAIL_TASK) is logged with
  its traceback; the users drain; the exit status is 70, so systemd restarts it;
* `run --once` exits 1 when a user ended FATAL or with leftovers;
* a volume the exchange reports as NaN or Infinity marks that user's row, and nobody else
  notices."""

from __future__ import annotations

from decimal import Decimal

import pytest
from aiohttp import web

from protocol.exitcodes import SupervisorExit
from tests.supervisor.harness import Deployment, strategy, wait_gone


def failures(d, task: str) -> list[dict]:
    return [e for e in d.events("supervisor_task_failed") if e.get("task") == task]


async def test_a_failing_supervisor_task_drains_the_users_and_exits_70(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in "12"})
    d.write_config([strategy("s1", ["1", "2"], target=100000, amount=10, stop_grace_seconds=5)])
    # the events task raises on the 40th frame from a user: both are trading by then
    d.start(
        once=False,
        ALPHAVOL_STANDIN='{"trade_seconds": 0.05, "drain_seconds": 0.5}',
        ALPHAVOL_FAIL_TASK="events:40",
    )
    await d.wait_ready()
    users = await d.wait_users(lambda us: all(u.pid for u in us.values()), 20, "both started")
    assert await d.wait_exit(30) == SupervisorExit.INTERNAL == 70
    (failure,) = failures(d, "events")
    assert "Traceback" in failure["exception"] and "InjectedFault" in failure["exception"]
    assert failure["level"] == "error"
    for u in "12":  # drained, not stopped now, not killed
        got = d.commands(u)
        assert "Drain" in got and "StopNow" not in got, (u, got)
        assert f"user {u} s1: STOPPED" in d.stdout
    assert not d.events("killing_user_process")
    assert await wait_gone([u.pid for u in users.values()], 2) == []


async def one_user_run(deploy, sim, **env: str) -> tuple[Deployment, int]:
    """`run --once` with one stand-in user; returns it and its exit status."""
    d = deploy()
    d.store({"1": sim.credentials("acct1")})
    d.write_config([strategy("s1", ["1"], target=100, amount=10)])
    d.start(ALPHAVOL_STANDIN="{}", **env)
    return d, await d.wait_exit(20)


async def test_a_failing_volume_check_exits_70_before_anyone_starts(deploy, sim):
    d, code = await one_user_run(deploy, sim, ALPHAVOL_FAIL_TASK="volumes")
    assert code == 70
    (failure,) = failures(d, "main loop")
    assert "InjectedFault" in failure["exception"] and "check" in failure["exception"]
    assert not d.events("user_process_started")


async def test_a_misspelt_fail_task_knob_is_refused_with_exit_2(deploy, sim):
    d, code = await one_user_run(deploy, sim, ALPHAVOL_FAIL_TASK="event")
    assert code == 2
    assert "ALPHAVOL_FAIL_TASK" in d.stderr


@pytest.mark.parametrize(
    "standin, bad_state",
    [
        ('{"trade_seconds": 0.01, "crash_users": ["2"]}', "FATAL"),  # crashed twice
        ('{"trade_seconds": 0.01, "leftover_users": ["2"]}', "DONE"),  # left tokens
    ],
)
async def test_run_once_exits_1_when_a_user_ended_fatal_or_with_leftovers(
    deploy, sim, standin, bad_state
):
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in "12"})
    d.write_config([strategy("s1", ["1", "2"], target=50, amount=10)])
    d.start(ALPHAVOL_STANDIN=standin, ALPHAVOL_CRASH_LIMIT="1")
    assert await d.wait_exit(30) == SupervisorExit.USERS_FAILED == 1
    assert "user 1 s1: DONE" in d.stdout
    assert f"user 2 s1: {bad_state}" in d.stdout
    levels = {e["dst"]: e["level"] for e in d.events("user_state_changed")}
    if bad_state == "FATAL":  # a crash is a warning; giving up on the user is an error
        assert levels["BACKOFF"] == "warning" and levels["FATAL"] == "error"
    else:
        (left,) = d.events("user_leftovers")
        assert left["level"] == "error" and left["user_id"] == "2"


async def fake_user_volume(bad: dict[str, str]) -> web.AppRunner:
    """An exchange that only answers user-volume: ``bad[account]`` (raw JSON text) as the
    volume of that account's KOGE, 0 for the others."""

    async def user_volume(request: web.Request) -> web.Response:
        acct = request.cookies.get("p20t", "")
        vol = bad.get(acct, "0")
        body = (
            '{"code":"000000","message":null,"messageDetail":null,"success":true,"data":'
            f'{{"totalVolume":{vol},"tradeVolumeInfoList":[{{"tokenName":"KOGE","volume":{vol}}}]}}}}'
        )
        return web.Response(text=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", user_volume)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def test_a_volume_that_is_not_a_number_marks_only_that_user(sim):
    runner = await fake_user_volume({"acct2": '"NaN"', "acct3": '"Infinity"'})
    port = runner.addresses[0][1]
    d = Deployment(base_url=f"http://127.0.0.1:{port}")
    try:
        d.store({u: sim.credentials(f"acct{u}") for u in "123"})
        d.write_config([strategy("s1", ["1", "2", "3"], target=30, amount=10)])
        d.start(once=False, ALPHAVOL_STANDIN='{"trade_seconds": 0.01}')
        await d.wait_ready()
        users = await d.wait_users(
            lambda us: us[("s1", "1")].state == "DONE" and us[("s1", "2")].last_error, 20, "checked"
        )
        assert (
            users[("s1", "1")].current_volume == Decimal(30) and not users[("s1", "1")].last_error
        )
        for u in "23":  # neither skipped "at target" nor taken for a volume
            row = users[("s1", u)]
            assert row.state != "SKIPPED" and row.start_volume in (None, Decimal(0)), row
            assert "volume" in (row.last_error or "").lower(), row
        assert d.proc is not None and d.proc.poll() is None  # the supervisor runs on
        res = await d.acli("shutdown")
        assert res.returncode == 0, res.stderr
        assert await d.wait_exit(20) == 0
    finally:
        d.cleanup()
        await runner.cleanup()
