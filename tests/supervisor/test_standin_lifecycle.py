"""The supervisor's process management with a stand-in user process (no real trading):
restarts, FATAL after the crash limit, the signal cascade, control, reload."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import signal
import stat
import time
from decimal import Decimal

import pytest

from protocol.addresses import CONTROL_SOCKET, control_endpoint
from supervisor.spawn import DEFAULT_CHILD_NICE
from tests.supervisor.harness import ALPHAVOL, nice_of, strategy, time_status, wait_gone

FRAME = "supervisor pid"  # the first line of every frame of the live view


async def watch_frames(d, n: int, within: float = 10) -> list[str]:
    """Run `alphavol status --watch` on a terminal (a pty: the live view redraws in place
    only there), read ``n`` complete frames from it, then stop it."""
    main_fd, term_fd = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        *[ALPHAVOL, "status", "--watch", "--config", str(d.config_path)],
        stdout=term_fd,
        env=d.env,
        cwd=d.dir,
    )
    os.close(term_fd)

    def read() -> str:
        buf = b""
        deadline = time.monotonic() + within
        # a frame is complete once the next one has started
        while buf.count(FRAME.encode()) < n + 1:
            left = deadline - time.monotonic()
            assert left > 0, f"no {n} frames from status --watch: {buf!r}"
            if select.select([main_fd], [], [], left)[0]:
                chunk = os.read(main_fd, 4096)
                assert chunk, f"status --watch ended early: {buf!r}"
                buf += chunk
        return buf.decode()

    try:
        buf = await asyncio.to_thread(read)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
        os.close(main_fd)
    return buf.split(FRAME)[1 : n + 1]


async def test_run_once_to_target_with_status_and_summary(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in ("1", "2")})
    d.write_config([strategy("s1", ["1", "2"], target=300, amount=10)])
    d.start(ALPHAVOL_STANDIN='{"trade_seconds": 0.03}')
    await d.wait_ready()
    users = await d.wait_users(
        lambda us: all(u.state == "RUNNING" and u.trades >= 2 for u in us.values()),
        30,
        "both users trading at once",
    )
    assert {k[1] for k in users} == {"1", "2"}
    assert all(Decimal(0) < u.current_volume < Decimal(300) for u in users.values())
    assert await d.wait_exit() == 0
    assert "user 1 s1: DONE volume 300/300" in d.stdout
    assert "user 2 s1: DONE volume 300/300" in d.stdout


async def test_crashing_user_goes_fatal_after_the_limit_while_others_trade(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in ("1", "2")})
    d.write_config([strategy("s1", ["1", "2"], target=2000, amount=10)])
    d.start(
        ALPHAVOL_STANDIN='{"trade_seconds": 0.02, "crash_users": ["2"]}',
        ALPHAVOL_CRASH_LIMIT="3",
    )
    await d.wait_ready()
    users = await d.wait_users(lambda us: us[("s1", "2")].state == "FATAL", 30, "user 2 FATAL")
    assert users[("s1", "2")].restarts == 3
    assert "crashed 4 times" in (users[("s1", "2")].reason or "")
    assert users[("s1", "1")].state in ("RUNNING", "STARTING", "DONE")
    # the CLI keeps working while user 1 trades
    t0 = time.monotonic()
    res = await d.acli("status")
    assert res.returncode == 0, res.stderr
    assert "FATAL" in res.stdout and "crashed 4 times" in res.stdout
    assert time.monotonic() - t0 < 10
    res = await d.acli("shutdown")
    assert res.returncode == 0
    assert await d.wait_exit() == 0  # a requested stop exits 0 even with a FATAL user
    backoffs = [e for e in d.events("user_state_changed") if e.get("dst") == "BACKOFF"]
    assert len(backoffs) == 3


@pytest.mark.serial
async def test_control_commands_while_trading_and_status_is_fast(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in ("1", "2")})
    d.write_config([strategy("s1", ["1", "2"], target=100000, amount=10)])
    d.start(once=False, ALPHAVOL_STANDIN='{"trade_seconds": 0.02}')
    await d.wait_ready()
    # the runtime directory is private to the service's user, and the control socket is in it
    assert stat.S_IMODE(os.stat(d.runtime).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(d.runtime / CONTROL_SOCKET).st_mode)
    assert control_endpoint(d.runtime) == f"ipc://{d.runtime / CONTROL_SOCKET}"
    users = await d.wait_users(
        lambda us: all(u.trades >= 2 and u.pid for u in us.values()), 20, "trading"
    )
    # user processes run at the supervisor's priority plus the default increment
    for u in users.values():
        assert nice_of(u.pid) == min(nice_of(d.proc.pid) + DEFAULT_CHILD_NICE, 19), u.pid
    took = await time_status(d, 20)
    assert took[18] < 0.1, took  # p95 of 20 requests within 100 ms
    # `status --watch` redraws in place: two frames, each after a clear-screen, showing progress
    frames = await watch_frames(d, 2)
    assert all("s1" in f and "RUNNING" in f for f in frames), frames
    assert frames[0] != frames[1], frames  # the second frame is a fresh reading, not a copy
    res = await d.acli("stop", "--user", "2")
    assert res.returncode == 0 and "users 2" in res.stdout, res.stderr
    await d.wait_users(lambda us: us[("s1", "2")].state == "STOPPED", 10, "user 2 STOPPED")
    assert (await d.users())[("s1", "1")].state == "RUNNING"
    res = await d.acli("start", "s1", "--user", "2")
    assert res.returncode == 0, res.stderr
    await d.wait_users(lambda us: us[("s1", "2")].state == "RUNNING", 10, "user 2 again")
    res = await d.acli("status", "--json")
    import json

    doc = json.loads(res.stdout)
    s1 = doc["strategies"][0]
    assert s1["strategy_id"] == "s1" and s1["is_running"] is True
    assert set(s1["user_volumes"]) == {"1", "2"}
    assert {"target_volume", "total_volume", "progress", "strategy_name"} <= set(s1)
    res = await d.acli("stop", "--user", "99")
    assert res.returncode == 1 and "no running" in res.stderr
    res = await d.acli("shutdown")
    assert res.returncode == 0
    assert await d.wait_exit(20) == 0


async def test_cli_without_supervisor_says_so(deploy, sim):
    d = deploy()
    d.write_config([strategy("s1", ["1"], target=10)])
    res = await d.acli("status")
    assert res.returncode == 1
    assert "no supervisor is running" in res.stderr


async def test_reload_adds_a_user_applies_settings_and_refuses_a_broken_config(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in ("1", "2", "3")})
    d.write_config([strategy("s1", ["1", "3"], target=100000, amount=10)])
    d.start(once=False, ALPHAVOL_STANDIN='{"trade_seconds": 0.02}', ALPHAVOL_CHILD_NICE="3")
    await d.wait_ready()
    users = await d.wait_users(
        lambda us: all(us[("s1", u)].trades >= 1 and us[("s1", u)].pid for u in "13"),
        20,
        "users 1 and 3 trading",
    )
    # the increment is configurable
    assert nice_of(users[("s1", "3")].pid) == min(nice_of(d.proc.pid) + 3, 19)
    removed_pid = users[("s1", "3")].pid
    # a broken config is refused, with the problem named; the old one keeps running
    d.config_path.write_text(
        d.config_path.read_text().replace("target_volume: 100000", "target_volume: -5")
    )
    res = await d.acli("reload")
    assert res.returncode == 2  # a refused config is the operator's to fix
    assert "target_volume" in res.stderr and "old one kept" in res.stderr
    assert (await d.users())[("s1", "1")].state == "RUNNING"
    # a good one: user 2 joins, user 3 leaves (drains, then is gone), and user 1's new
    # (lower) target applies to its running process
    d.write_config([strategy("s1", ["1", "2"], target=300, amount=10)])
    res = await d.acli("reload")
    assert res.returncode == 0, res.stderr
    await d.wait_users(lambda us: ("s1", "3") not in us, 10, "user 3 gone from status")
    assert await wait_gone([removed_pid], 5) == []
    user3 = [e["dst"] for e in d.events("user_state_changed") if e["user_id"] == "3"]
    assert user3[-1] == "STOPPING", user3  # drained, then removed (no restart, no DONE)
    assert "STOPPING" not in user3[:-1] and "BACKOFF" not in user3, user3
    assert [e["user_id"] for e in d.events("user_removed")] == ["3"]
    users = await d.wait_users(
        lambda us: (
            ("s1", "2") in us
            and us[("s1", "2")].state == "DONE"
            and us[("s1", "1")].state == "DONE"
        ),
        20,
        "both users DONE at the new target",
    )
    assert users[("s1", "1")].target_volume == Decimal(300)
    assert users[("s1", "1")].restarts == 0  # applied in place, not by a restart

    async def waiting():
        st = await d.status()
        return st if st.phase == "waiting_next_day" else None

    st = await d.until(waiting, 10, "waiting for the next day")
    assert st.next_run_at is not None and st.next_run_at > time.time()
    res = await d.acli("status")
    assert "next run" in res.stdout
    d.signal(signal.SIGTERM)
    assert await d.wait_exit(20) == 0


async def test_a_process_ignoring_every_stop_is_killed_after_the_hard_limit(deploy, sim):
    d = deploy()
    d.store({"1": sim.credentials("acct1")})
    d.write_config([strategy("s1", ["1"], target=100000, amount=10, stop_grace_seconds=0.5)])
    d.start(
        ALPHAVOL_STANDIN='{"trade_seconds": 0.05, "deaf": true}',
        ALPHAVOL_STOP_MARGIN="0.5",
        ALPHAVOL_KILL_AFTER="1",
    )
    await d.wait_ready()
    users = await d.wait_users(lambda us: us[("s1", "1")].trades >= 1, 20, "trading")
    pid = users[("s1", "1")].pid
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    assert await d.wait_exit(20) == 0
    assert 1.5 <= time.monotonic() - t0 < 6  # drain grace + margin, then stop-now limit, then kill
    assert await wait_gone([pid], 1) == []
    assert [e["user_id"] for e in d.events("killing_user_process")] == ["1"]
