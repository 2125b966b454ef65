"""Many users starting at once: forking them must never stall the supervisor.

A stalled supervisor sends no Pings, so the users started first give up on it (exit
SUPERVISOR_LOST) and are started again, and the CLI waits seconds for an answer.
"""

from __future__ import annotations

import json
import time

import pytest

from protocol import messages as m
from supervisor.client import SupervisorNotRunning
from tests.supervisor.harness import strategy

pytestmark = pytest.mark.serial  # timing bounds in seconds: run alone

USERS = 50
PATIENCE = 3.0  # seconds without a Ping after which a stand-in gives up


async def test_many_users_each_start_once_and_status_stays_fast(deploy, sim):
    users = [str(i) for i in range(1, USERS + 1)]
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in users})
    d.write_config([strategy("s1", users, target=10**9, amount=10)], max_concurrent_users=USERS)
    d.start(
        once=False,
        ALPHAVOL_STANDIN=json.dumps({"trade_seconds": 0.5, "heartbeat_timeout": PATIENCE}),
    )
    await d.wait_ready()

    # Ask for status back to back while every user is started, and on until a child
    # starved of Pings during the start would have given up (PATIENCE after the last
    # start: stricter than the real HEARTBEAT_TIMEOUT, which is a backstop).
    took: list[float] = []
    all_running_at = None
    begin = time.monotonic()
    while True:
        t0 = time.perf_counter()
        try:
            st = await d.request(m.StatusRequest(), within=2.0)
        except SupervisorNotRunning:
            st = None
        took.append(time.perf_counter() - t0)
        assert d.proc is not None and d.proc.poll() is None, d.diagnose()
        now = time.monotonic()
        if all_running_at is None and isinstance(st, m.StatusReply):
            states = [u.state for s in st.strategies for u in s.users]
            if len(states) == USERS and all(x == "RUNNING" for x in states):
                all_running_at = now
        if all_running_at is not None and now - all_running_at > PATIENCE + 1.0:
            break
        assert len(took) < 20000 and now - begin < 90, f"users never all ran\n{d.diagnose()}"

    users_now = await d.users()
    res = await d.acli("shutdown")
    assert res.returncode == 0, res.stderr
    assert await d.wait_exit(30) == 0

    started = d.events("user_process_started")
    lost = [e for e in d.events("user_process_exited") if e.get("exitcode") == 16]
    backoffs = [e for e in d.events("user_state_changed") if e.get("dst") == "BACKOFF"]
    assert len(started) == USERS, (len(started), len(lost))
    assert sorted(e["user_id"] for e in started) == sorted(users)
    assert not lost and not backoffs
    assert all(u.restarts == 0 and u.trades >= 1 for u in users_now.values())

    took.sort()
    p99 = took[int(len(took) * 0.99)]
    assert len(took) >= 50, len(took)
    assert p99 < 0.1, f"status p99 {p99 * 1000:.1f} ms, max {took[-1] * 1000:.1f} ms"
