"""The supervisor's HTTP doors (the metrics endpoint) against hostile local clients: a
real supervisor with real users trading on the sim, a real soft RLIMIT_NOFILE of 1,024,
real TCP connections."""

from __future__ import annotations

import asyncio
import resource
import socket
import time

import aiohttp
import pytest

from tests.supervisor.harness import Deployment, strategy, time_status
from tests.supervisor.test_metrics import free_port
from tests.supervisor.test_real_users import FAST

OWNERS = {"1": "doors-owner-one", "2": "doors-owner-two", "3": "doors-owner-three"}
CLIENTS = 1100


def nofile_1024() -> None:  # in the supervisor's process, before exec
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


@pytest.fixture
def many_fds():
    """This test process itself needs more than 1,100 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = CLIENTS + 500
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"the hard RLIMIT_NOFILE ({hard}) is below {want}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def running(d: Deployment, sim, port: int) -> None:
    d.store({u: sim.credentials(a) for u, a in OWNERS.items()})
    d.write_config(
        [strategy("koge", list(OWNERS), target=10**9, amount=10)],
        sections={"metrics": {"listen": f"127.0.0.1:{port}"}},
    )
    d.start(once=False, child=None, preexec_fn=nofile_1024, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    await d.trading("123")


def open_idle(port: int, n: int) -> list[socket.socket]:
    """``n`` connections that never send a byte (connected, or still in the backlog)."""
    out = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        out.append(s)
    return out


async def scrape_status(port: int) -> int:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            await resp.read()
            return resp.status


async def test_eleven_hundred_idle_connections_cannot_stall_or_kill_the_supervisor(
    deploy, sim, many_fds
):
    port = free_port()
    d: Deployment = deploy()
    await running(d, sim, port)
    before = await d.users()
    pids = {k: u.pid for k, u in before.items()}
    clients = open_idle(port, CLIENTS)
    try:
        # what an operator does while the port is flooded: ask, again and again, while the
        # kernel hands the door connection after connection (SYNs beyond the backlog are
        # retried by the clients' kernel for seconds)
        window_ends = time.monotonic() + 8
        while time.monotonic() < window_ends:
            took = await time_status(d, 5)
            assert took[-1] < 1.0, took
            res = await d.acli("status")
            assert res.returncode == 0, res.stderr + d.diagnose()
        trades = {k: u.trades for k, u in (await d.users()).items()}
        after = await d.wait_users(
            lambda us: all(us[k].trades > trades[k] for k in trades), 20, "every user trading on"
        )
        assert {k: u.pid for k, u in after.items()} == pids, d.diagnose()
        assert all(u.restarts == 0 and u.state == "RUNNING" for u in after.values())
        assert d.proc is not None and d.proc.poll() is None, d.diagnose()
    finally:
        for s in clients:
            s.close()
    # the door opens again for a real scraper once the flood is gone
    assert await scrape_status(port) == 200
    assert not d.events("supervisor_lost")
    errors = [line for line in d.stderr.splitlines() if "out of system resource" in line]
    assert len(errors) <= 1, errors[:5]
    d.signal(15)
    assert await d.wait_exit(30) == 0, d.diagnose()


async def test_malformed_requests_are_answered_400_and_logged_once_per_client(deploy, sim):
    port = free_port()
    d: Deployment = deploy()
    d.store({"1": sim.credentials(OWNERS["1"])})
    d.write_config(
        [strategy("koge", ["1"], target=10**9)],
        sections={"metrics": {"listen": f"127.0.0.1:{port}"}},
    )
    d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    await d.until(lambda: _can_connect(port), 10, "the metrics port open")
    for _ in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        assert status_line.split()[1:2] == [b"400"], status_line
        writer.close()
    assert await scrape_status(port) == 200

    async def logged():
        return d.events("http_bad_request")

    await d.until(logged, 5, "the warning")
    (warning,) = d.events("http_bad_request")
    assert warning["level"] == "warning" and warning["client"] == "127.0.0.1"
    assert "Traceback" not in d.stderr, d.diagnose()
    d.signal(15)
    assert await d.wait_exit(30) == 0, d.diagnose()


async def _can_connect(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def test_run_warns_when_the_descriptor_limit_is_too_low_for_the_users(deploy, sim):
    d: Deployment = deploy()
    d.store({"1": sim.credentials(OWNERS["1"])})
    d.write_config([strategy("koge", ["1"], target=10**9)], max_concurrent_users=400)
    t0 = time.monotonic()
    d.start(once=False, child=None, preexec_fn=nofile_1024, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    (warning,) = d.events("open_files_limit_low")
    assert warning["soft_limit"] == 1024 and warning["max_concurrent_users"] == 400
    assert "LimitNOFILE" in warning["fix"]
    assert time.monotonic() - t0 < 30
    d.signal(15)
    assert await d.wait_exit(30) == 0, d.diagnose()
