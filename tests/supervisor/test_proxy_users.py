"""Issue 12, a proxy per account, with the real supervisor and real user processes on the
simulated exchange: user 2 trades through a real HTTP or SOCKS5 proxy with a password,
user 1 directly; every connection of user 2's process goes to the proxy, none of user 1's;
the password appears in no output. A wrong proxy is one per-user error naming it (password
masked) in `volumes` and `check --online`, and nothing of that user reaches the exchange.
`ps` names every process (issue 12): supervisor, fork server, user N and its strategies."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.passproxy import PasswordProxy, free_port, remote_ports, requests_of
from tests.supervisor.harness import strategy
from tests.supervisor.test_real_users import FAST, acct

PASSWORD = "pw-Kq2rW9"


def cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode().strip()


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(") ", 1)[1].split()[1])


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_one_user_trades_through_its_proxy_the_other_directly(deploy, sim, scheme):
    sim_port = int(sim.base_url.rsplit(":", 1)[1])
    async with PasswordProxy(scheme, "alice", PASSWORD) as proxy:
        d = deploy()
        d.store({u: sim.credentials(acct(u)) for u in ("1", "2")})
        koge = strategy("koge", ["1", "2"], target=400, amount=10, trade_interval_seconds=0.05)
        d.write_config([koge], user_overrides=[{"user_id": "2", "proxy": proxy.url}])
        d.start(child=None, ALPHAVOL_TUNING=FAST)
        await d.wait_ready()
        users = await d.trading("12", within=30)
        pids = {u: users[("koge", u)].pid for u in ("1", "2")}
        # the user stream stays connected: each process holds its route open
        ports = {u: remote_ports(pid) for u, pid in pids.items()}
        assert proxy.port in ports["2"] and sim_port not in ports["2"], ports
        assert sim_port in ports["1"] and proxy.port not in ports["1"], ports
        assert proxy.connections(sim_port), proxy.lines
        # what each process is, in ps
        assert cmdline(d.proc.pid) == "alphavol: supervisor"
        assert cmdline(pids["1"]) == "alphavol: user 1 koge"
        assert cmdline(parent_of(pids["1"])) == "alphavol: fork server"
        assert await d.wait_exit(60) == 0, d.diagnose()
    for u in ("1", "2"):
        a = await sim.admin.account(acct(u))
        assert Decimal(a["volume_now"]["KOGE"]) >= 400
    assert "user 2 koge: DONE" in d.stdout
    assert PASSWORD not in d.stdout + d.stderr


async def test_a_wrong_proxy_is_a_per_user_error_naming_it_without_its_password(deploy, sim):
    async with PasswordProxy("socks5", "alice", PASSWORD) as proxy:
        d = deploy()
        d.store({u: sim.credentials(acct(u)) for u in ("1", "2", "3")})
        dead = f"http://alice:{PASSWORD}@127.0.0.1:{free_port()}"
        d.write_config(
            [strategy("koge", ["1", "2", "3"], target=400)],
            user_overrides=[
                {"user_id": "2", "proxy": proxy.with_password("Wrong-pw-77")},
                {"user_id": "3", "proxy": dead},
            ],
        )
        vols = await d.acli("volumes")
        online = await d.acli("check", "--online")
        users_check = await d.acli("users", "check", "--online")
    assert vols.returncode == 1 and online.returncode == 2 and users_check.returncode == 2
    for res in (vols, online, users_check):
        out = " ".join((res.stdout + res.stderr).split())  # tables fold long notes
        assert f"socks5://alice:***@127.0.0.1:{proxy.port}" in out, out
        assert "username or password" in out and "cannot connect to the proxy" in out, out
        assert f"http://alice:***@127.0.0.1:{dead.rsplit(':', 1)[1]}" in out, out
        assert PASSWORD not in out and "Wrong-pw-77" not in out
    assert "user 1: alive" in users_check.stdout
    assert await requests_of(sim, acct("2")) == 0 and await requests_of(sim, acct("3")) == 0
    assert await requests_of(sim, acct("1")) > 0


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_a_proxy_refusing_the_password_is_fatal_at_once_a_dead_one_is_retried(
    deploy, sim, scheme
):
    """Issue 21 item 4: user 2's proxy refuses its password: FATAL within 30 s, never
    restarted, the reason naming the proxy (password masked) and the fix; user 3's proxy
    is not running: a transient, restarted with backoff; user 1 (no proxy) trades to its
    target. Then the advice, followed to the letter, gets user 2 trading."""
    async with PasswordProxy(scheme, "alice", PASSWORD) as proxy:
        d = deploy()
        d.store({u: sim.credentials(acct(u)) for u in ("1", "2", "3")})
        dead = f"{scheme}://alice:{PASSWORD}@127.0.0.1:{free_port()}"
        koge = strategy("koge", ["1", "2", "3"], target=300, amount=10)
        overrides = [
            {"user_id": "2", "proxy": proxy.with_password("Wrong-pw-77")},
            {"user_id": "3", "proxy": dead},
        ]
        d.write_config([koge], user_overrides=overrides, retry_delay_seconds=0.05)
        tuning = {**json.loads(FAST), "stream_connect_timeout": 2.0}
        d.start(once=False, child=None, ALPHAVOL_TUNING=json.dumps(tuning))
        await d.wait_ready()
        two = (await d.wait_users(lambda us: us["koge", "2"].state == "FATAL", 30, "FATAL"))[
            "koge", "2"
        ]
        three = (await d.wait_users(lambda us: us["koge", "3"].restarts >= 2, 30, "restarts"))[
            "koge", "3"
        ]
        assert two.restarts == 0, two
        shown = f"{scheme}://alice:***@127.0.0.1:{proxy.port}"
        assert f"proxy {shown}: refused the username or password" in two.reason, two.reason
        assert "user_overrides[].proxy" in two.reason and "alphavol reload" in two.reason
        assert "`alphavol start --user 2`" in two.reason, two.reason
        assert three.state != "FATAL" and "cannot connect to the proxy" in (
            three.last_error or three.reason or ""
        ), three
        later = await d.wait_users(lambda us: us["koge", "1"].state == "DONE", 60, "1 DONE")
        assert (later["koge", "2"].state, later["koge", "2"].restarts) == ("FATAL", 0)
        status = await d.acli("status")
        assert f"proxy {shown}" in " ".join(status.stdout.split()), status.stdout
        # the fix, as the reason gives it
        overrides[0]["proxy"] = proxy.url
        d.write_config([koge], user_overrides=overrides, retry_delay_seconds=0.05)
        assert (await d.acli("reload")).returncode == 0
        assert (await d.acli("start", "--user", "2")).returncode == 0
        await d.wait_users(lambda us: us["koge", "2"].state == "DONE", 60, "user 2 DONE")
        assert (await d.acli("shutdown")).returncode == 0
        assert await d.wait_exit(30) == 0, d.diagnose()
    assert await requests_of(sim, acct("3")) == 0
    for u in ("1", "2"):
        a = await sim.admin.account(acct(u))
        assert Decimal(a["volume_now"]["KOGE"]) >= 300
    seen = d.stdout + d.stderr + status.stdout + status.stderr
    assert PASSWORD not in seen and "Wrong-pw-77" not in seen
    journals = b"".join(p.read_bytes() for p in (d.data / "journals").glob("*"))
    assert PASSWORD.encode() not in journals and b"Wrong-pw-77" not in journals
