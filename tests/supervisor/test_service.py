"""What systemd and an operator see: sd_notify, the concurrency limit, refusing to start
on bad credentials or next to a running supervisor, quick and volumes, no secrets."""

from __future__ import annotations

import asyncio
import json
import socket
from decimal import Decimal

import pytest

from tests.supervisor.harness import strategy


class FakeSystemd:
    """A Unix datagram socket standing in for systemd's $NOTIFY_SOCKET. Like systemd, it
    reads every datagram as it arrives: a queue left unread fills (10 datagrams) and the
    supervisor's next ones are dropped."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.lines: list[str] = []
        self._arrived = asyncio.Event()
        asyncio.get_running_loop().add_reader(self.sock, self._read)

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return
            self.lines.extend(data.decode().split("\n"))
            self._arrived.set()

    async def wait_for(self, line: str, within: float = 15) -> list[str]:
        async with asyncio.timeout(within):
            while line not in self.lines:
                self._arrived.clear()
                await self._arrived.wait()
        return self.lines


@pytest.mark.serial  # waits on watchdog and status lines with time bounds
async def test_sd_notify_ready_status_reloading_stopping(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in ("1",)})
    d.write_config([strategy("s1", ["1"], target=100000, amount=10)])
    systemd = FakeSystemd(str(d.dir / "notify"))
    d.start(
        once=False,
        ALPHAVOL_STANDIN='{"trade_seconds": 0.02}',
        NOTIFY_SOCKET=systemd.path,
        WATCHDOG_USEC="400000",
    )
    await systemd.wait_for("READY=1")
    await d.wait_ready()  # READY=1 came when the control socket was already up
    await systemd.wait_for("WATCHDOG=1")
    assert any(x.startswith("STATUS=") for x in systemd.lines)
    res = await d.acli("reload")
    assert res.returncode == 0, res.stderr
    await systemd.wait_for("RELOADING=1")
    assert any(x.startswith("MONOTONIC_USEC=") for x in systemd.lines)
    d.signal(1)  # SIGHUP rereads the config too

    async def reloaded_twice():
        return len(d.events("config_reloaded")) == 2

    await d.until(reloaded_twice, 10, "the SIGHUP reload")
    res = await d.acli("shutdown")
    assert res.returncode == 0
    await systemd.wait_for("STOPPING=1")
    assert await d.wait_exit(20) == 0


async def test_at_most_max_concurrent_users_run_the_rest_queue(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in ("1", "2", "3")})
    d.write_config([strategy("s1", ["1", "2", "3"], target=150, amount=10)], max_concurrent_users=1)
    d.start(ALPHAVOL_STANDIN='{"trade_seconds": 0.02}')
    await d.wait_ready()
    users = await d.wait_users(
        lambda us: any(u.state == "RUNNING" for u in us.values()), 20, "one running"
    )
    assert sum(u.state == "PENDING" for u in users.values()) == 2
    assert await d.wait_exit(30) == 0
    spawned = [e for e in d.events("user_state_changed") if e["dst"] == "STARTING"]
    done = [e for e in d.events("user_state_changed") if e["dst"] == "DONE"]
    # each start comes after the previous user finished
    order = sorted(spawned + done, key=lambda e: e["timestamp"])
    assert [e["dst"] for e in order] == ["STARTING", "DONE"] * 3


async def test_missing_credentials_exit_2_and_start_nothing(deploy, sim):
    d = deploy()
    d.store({"1": sim.credentials("acct1")})
    d.write_config([strategy("s1", ["1", "2"], target=100, amount=10)])
    d.start(ALPHAVOL_STANDIN="{}")
    assert await d.wait_exit(20) == 2
    assert "user 2" in d.stderr
    assert not d.events("user_process_started")


async def test_a_second_supervisor_on_the_same_runtime_dir_is_refused(deploy, sim):
    d = deploy()
    d.store({"1": sim.credentials("acct1")})
    d.write_config([strategy("s1", ["1"], target=100000, amount=10)])
    d.start(once=False, ALPHAVOL_STANDIN='{"trade_seconds": 0.05}')
    await d.wait_ready()
    res = await d.acli("run")
    assert res.returncode == 2
    assert "another supervisor" in res.stderr
    (await d.status())  # the first one still answers
    d.signal(2)
    assert await d.wait_exit(20) == 0


async def test_volumes_asks_every_user_and_starts_nothing(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in ("1", "2")})
    await sim.admin.set_volume("acct2", "KOGE", Decimal(250))
    d.write_config([strategy("s1", ["1", "2"], target=200, amount=10)])
    res = await d.acli("volumes", "--json")
    assert res.returncode == 0, res.stderr
    rows = {r["user_id"]: r for r in json.loads(res.stdout)}
    assert rows["1"]["at_target"] is False
    assert rows["2"]["at_target"] is True and Decimal(rows["2"]["current_volume"]) == 250
    assert (await sim.admin.account("acct1"))["oto_count"] == 0


async def test_quick_runs_one_strategy_from_flags_and_leaks_no_secret(deploy, sim):
    d = deploy()
    creds = {"7": sim.credentials("acct7")}
    d.store(creds)
    d.write_config([strategy("unused", ["7"], target=10, amount=10)])
    from tests.supervisor.test_real_users import FAST

    d.env = {}
    import os

    d.env = {**os.environ, "ALPHAVOL_SECRET_KEY": d.key.decode(), "ALPHAVOL_TUNING": FAST}
    res = await d.acli(
        "quick",
        "--token",
        "KOGE",
        "--chain",
        "BSC",
        "--volume",
        "60",
        "--amount",
        "10",
        "--user",
        "7",
        "--interval",
        "0",
        within=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "user 7 quick: DONE" in res.stdout
    a = await sim.admin.account("acct7")
    vol = Decimal(a["volume_now"]["KOGE"])
    # KOGE counts each round trip's buy (multiplier 1): at most one trade past the target
    credit = max(Decimal(o["cum_quote"]) for o in a["orders"] if o["side"] == "BUY" and o["trades"])
    assert Decimal(60) <= vol <= Decimal(60) + credit, (vol, credit)
    assert a["open_orders"] == 0
    for secret in creds["7"].secret_values():
        assert secret not in res.stdout and secret not in res.stderr


async def test_children_inherit_neither_the_store_key_nor_the_notify_socket(deploy, sim):
    d = deploy()
    d.store({"1": sim.credentials("acct1")})
    d.write_config([strategy("s1", ["1"], target=100, amount=10)])
    systemd = FakeSystemd(str(d.dir / "notify"))
    d.start(child="tests.supervisor.standin:env_report", NOTIFY_SOCKET=systemd.path)
    assert await d.wait_exit(20) == 0, d.diagnose()
    report = json.loads((d.data / "journals" / "user-1.sqlite").read_text())
    assert report == {"env": [], "user": "1"}
