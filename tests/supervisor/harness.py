"""Running the real supervisor (`alphavol run`) as a subprocess in tests.

``Deployment`` writes a config + credentials store into a short temporary directory (ipc
paths must stay under ~100 bytes), ``start`` launches ``.venv/bin/alphavol run``, and the
helpers talk to it over the real control socket. Waiting is always "until a condition
holds, or fail after a timeout", polled asynchronously so a SimHarness in the same event
loop keeps serving.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from config.credentials import CredentialStore, new_key
from protocol import messages as m
from supervisor.client import ControlClient, SupervisorNotRunning

ALPHAVOL = str(Path(sys.executable).parent / "alphavol")
ROOT = Path(__file__).resolve().parents[2]
STANDIN = "tests.supervisor.standin:child_main"


class Deployment:
    def __init__(self, *, base_url: str, ws_url: str = "ws://127.0.0.1:9/w3w/stream") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="av-", dir="/tmp"))
        self.base_url, self.ws_url = base_url, ws_url
        self.key = new_key()
        self.config_path = self.dir / "config.yaml"
        self.runtime = self.dir / "run"
        self.data = self.dir / "data"
        self.proc: subprocess.Popen | None = None
        self.env: dict[str, str] = {}

    def store(self, creds: dict[str, Any]) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        store = CredentialStore(self.data / "credentials.sqlite", key=self.key)
        for uid, c in creds.items():
            store.put(uid, c)

    def write_config(
        self,
        strategies: list[dict],
        *,
        user_overrides: list[dict] | None = None,
        sections: dict | None = None,
        **global_settings: Any,
    ) -> None:
        """``sections``: more top-level sections (``notify``, ``metrics`` ...)."""
        doc: dict[str, Any] = {
            "global_settings": {"max_concurrent_users": 10, **global_settings},
            "exchange": {
                "base_url": self.base_url,
                "ws_url": self.ws_url,
                "request_timeout_seconds": 2,
            },
            "paths": {"data_dir": str(self.data), "runtime_dir": str(self.runtime)},
            "schedule": {"daily_restart": True, "offset_seconds": 300},
            "logging": {"level": "INFO", "format": "json"},
            "strategies": strategies,
            **(sections or {}),
        }
        if user_overrides:
            doc["user_overrides"] = user_overrides
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(doc))
        tmp.replace(self.config_path)

    def start(
        self,
        *,
        once: bool = True,
        child: str | None = STANDIN,
        args: tuple = (),
        preexec_fn: Callable[[], None] | None = None,
        **env: str,
    ) -> None:
        """``preexec_fn`` runs in the supervisor's process before it starts (e.g. to lower
        its RLIMIT_NOFILE)."""
        self.proc = subprocess.Popen(
            [*self._run_args(once), *args],
            stdout=open(self.dir / "stdout", "wb"),
            stderr=open(self.dir / "stderr", "wb"),
            cwd=self.dir,
            env=self._env(child, env),
            start_new_session=True,
            preexec_fn=preexec_fn,
        )

    def start_on_terminal(
        self,
        *,
        once: bool = True,
        child: str | None = STANDIN,
        size: tuple[int, int] = (80, 24),
        **env: str,
    ) -> Terminal:
        """``alphavol run`` as an operator starts it in a terminal: a new session whose
        controlling terminal is a pseudo-terminal of ``size`` (columns, rows; stdin, stdout
        and stderr on it); the returned ``Terminal`` types into it, reads what it shows,
        and can close it."""
        term = Terminal(*size)
        full = self._env(child, env)
        for name in ("COLUMNS", "LINES"):  # set by pytest-xdist; the terminal has its size
            full.pop(name, None)
        self.proc = subprocess.Popen(
            self._run_args(once),
            stdin=term.slave,
            stdout=term.slave,
            stderr=term.slave,
            cwd=self.dir,
            env=full,
            start_new_session=True,
            preexec_fn=term.make_controlling,
        )
        term.started()
        return term

    def _run_args(self, once: bool) -> list[str]:
        return [ALPHAVOL, "run", "--config", str(self.config_path)] + (["--once"] if once else [])

    def _env(self, child: str | None, env: dict[str, str]) -> dict[str, str]:
        full = dict(os.environ)
        full.update(
            ALPHAVOL_SECRET_KEY=self.key.decode(),
            ALPHAVOL_RESTART_DELAY="0.05",
            ALPHAVOL_RESTART_MAX_DELAY="0.4",
            ALPHAVOL_STOP_MARGIN="3",
            ALPHAVOL_KILL_AFTER="5",
            PYTHONPATH=str(ROOT),
            # where a supervisor records where it serves (config.serving): the test's own
            XDG_RUNTIME_DIR=str(self.dir / "xdg"),
        )
        full.pop("NOTIFY_SOCKET", None)
        if child:
            full["ALPHAVOL_CHILD_TARGET"] = child
        full.update(env)
        self.env = full
        return full

    @property
    def stdout(self) -> str:
        return (self.dir / "stdout").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.dir / "stderr").read_text(errors="replace")

    def cli(self, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
        return subprocess.run(
            [ALPHAVOL, *args, "--config", str(self.config_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env or {**os.environ, "ALPHAVOL_SECRET_KEY": self.key.decode()},
            cwd=self.dir,
        )

    async def acli(self, *args: str, within: float = 20) -> subprocess.CompletedProcess:
        return await asyncio.to_thread(self.cli, *args, timeout=within)

    async def request(self, msg: m.Request, within: float = 2.0) -> m.Reply:
        return await asyncio.to_thread(ControlClient(self.runtime).request, msg, within)

    async def status(self) -> m.StatusReply:
        reply = await self.request(m.StatusRequest())
        assert isinstance(reply, m.StatusReply), reply
        return reply

    async def users(self) -> dict[tuple[str, str], m.UserStatus]:
        st = await self.status()
        return {(u.strategy_id, u.user_id): u for s in st.strategies for u in s.users}

    async def wait_ready(self, within: float = 20) -> m.StatusReply:
        async def ok():
            try:
                return await self.status()
            except SupervisorNotRunning:
                assert self.proc is not None and self.proc.poll() is None, self.diagnose()
                return None

        return await self.until(ok, within, "supervisor answering")

    async def until(self, check: Callable, within: float, what: str) -> Any:
        deadline = time.monotonic() + within
        last = None
        while time.monotonic() < deadline:
            last = await check()
            if last:
                return last
            if self.proc is not None and self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"gave up waiting for {what}; last={last!r}\n{self.diagnose()}")

    async def wait_users(self, pred: Callable[[dict], bool], within: float, what: str) -> dict:
        async def check():
            try:
                users = await self.users()
            except SupervisorNotRunning:
                return None
            return users if pred(users) else None

        return await self.until(check, within, what)

    async def wait_exit(self, within: float = 30) -> int:
        assert self.proc is not None
        try:
            return await asyncio.to_thread(self.proc.wait, within)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"supervisor did not exit\n{self.diagnose()}") from None

    def commands(self, user_id: str) -> list[str]:
        """What a stand-in user process received from the supervisor (Drain, StopNow ...)."""
        from tests.supervisor.standin import commands_of

        return commands_of(self.data / "journals" / f"user-{user_id}.sqlite")

    async def trading(self, users: str, within: float = 20) -> dict:
        """Wait until every user has done a trade; returns the users' status rows."""
        return await self.wait_users(
            lambda us: all(us[k].trades >= 1 and us[k].pid for k in us if k[1] in users),
            within,
            f"users {', '.join(users)} trading",
        )

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def diagnose(self) -> str:
        return f"--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-6000:]}"

    def events(self, name: str) -> list[dict]:
        out = []
        for line in self.stderr.splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict) and d.get("event") == name:
                out.append(d)
        return out

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[1].split()[0] != "Z":
                    alive.append(pid)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass  # gone (ESRCH: reaped between the open and the read)
    return alive


def nice_of(pid: int) -> int:
    """The nice value of a process: field 19 of /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(") ", 1)[1].split()  # fields from 3 (state) on
    return int(fields[19 - 3])


async def time_status(d: Deployment, n: int) -> list[float]:
    """Seconds each of ``n`` consecutive status requests took, sorted."""
    took = []
    for _ in range(n):
        t0 = time.perf_counter()
        await d.request(m.StatusRequest(), within=1)
        took.append(time.perf_counter() - t0)
    return sorted(took)


def strategy(
    sid: str,
    users: list[str],
    *,
    target: int,
    amount: int = 10,
    token: str = "KOGE",
    **kw: Any,
) -> dict:
    return {
        "strategy_id": sid,
        "strategy_name": sid.upper(),
        "target_token": token,
        "target_volume": int(target),
        "single_trade_amount_usdt": int(amount),
        "trade_interval_seconds": 0,
        "volume_check_delay_seconds": 0,
        "stop_grace_seconds": 2,
        "user_ids": users,
        **kw,
    }


async def wait_gone(pids: list[int], within: float) -> list[int]:
    """Wait (event-driven, via pidfds) until these processes have exited; returns the ones
    still alive after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    waits = []
    fds = []
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        fds.append(fd)
        fut = loop.create_future()
        loop.add_reader(fd, lambda f=fut: f.done() or f.set_result(None))
        waits.append(fut)
    try:
        if waits:
            await asyncio.wait(waits, timeout=within)
    finally:
        for fd in fds:
            loop.remove_reader(fd)
            os.close(fd)
    return pids_alive(pids)


class Terminal:
    """A pseudo-terminal for a process started in a new session: ``slave`` becomes its
    controlling terminal (``make_controlling`` runs in the child); what the process
    writes is read off the master in a thread, so it never blocks on a full terminal."""

    def __init__(self, columns: int = 80, rows: int = 24) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self.closed = False

    def make_controlling(self) -> None:  # in the child, after setsid
        fcntl.ioctl(self.slave, termios.TIOCSCTTY, 0)

    def started(self) -> None:
        os.close(self.slave)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the other side is gone
                return
            if not data:
                return
            self.output += data

    def type(self, data: bytes) -> None:
        """Keys typed at the terminal: b"\\x03" is Ctrl+C."""
        os.write(self.master, data)

    def close(self) -> None:
        """The terminal window is closed: the kernel hangs up the session."""
        if not self.closed:
            self.closed = True
            os.close(self.master)
