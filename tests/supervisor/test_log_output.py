"""The supervisor's log output can stall (a journald socket or a log file that hundreds of
user processes append to): the supervisor goes on answering, and no line is lost."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading

from protocol import messages as m
from tests.supervisor.harness import strategy, time_status
from tests.supervisor.test_real_users import FAST, acct


def start_with_stderr_on_a_pipe(d) -> None:
    """``alphavol run --once`` with real user processes; its stderr (and theirs) a pipe
    that nobody reads until the test says so."""
    d.proc = subprocess.Popen(
        d._run_args(True),
        stdout=open(d.dir / "stdout", "wb"),
        stderr=subprocess.PIPE,
        cwd=d.dir,
        env=d._env(None, {"ALPHAVOL_TUNING": FAST}),
        start_new_session=True,
    )


async def test_a_stalled_log_output_never_stops_the_supervisor_answering(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(acct(u)) for u in ("1", "2")})
    d.write_config([strategy("koge", ["1", "2"], target=10**9, amount=10)])
    start_with_stderr_on_a_pipe(d)
    assert d.proc.stderr is not None
    await d.wait_ready()
    await d.trading("1,2")
    # the output stalls: the pipe is filled to the last byte (as the users' own lines
    # would), so every log write from now on waits
    stalled = os.open(f"/proc/{d.proc.pid}/fd/2", os.O_WRONLY | os.O_NONBLOCK)
    try:
        with contextlib.suppress(BlockingIOError):
            while True:
                os.write(stalled, b"\n" * 4096)
        with contextlib.suppress(BlockingIOError):
            while True:
                os.write(stalled, b"\n")
    finally:
        os.close(stalled)
    # the supervisor now has lines to write (a stop), and nowhere to write them
    reply = await d.request(m.StopRequest(user_id="1"), within=2)
    assert isinstance(reply, m.OkReply), reply
    took = await time_status(d, 20)  # each within 1 s, or it raises
    assert took[-1] < 1.0, took
    users = await d.users()
    assert users[("koge", "1")].state in ("STOPPING", "STOPPED"), users

    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(d.proc.stderr.read()), daemon=True)
    reader.start()  # the output flows again: everything waiting is written
    reply = await d.request(m.ShutdownRequest(), within=2)
    assert await d.wait_exit(60) in (0, 1)
    reader.join(10)
    text = b"".join(out).decode(errors="replace")
    stop_lines = [
        line
        for line in text.splitlines()
        if '"user_state_changed"' in line and '"user_id": "1"' in line and "STOPPING" in line
    ]
    assert stop_lines, text[-3000:]
