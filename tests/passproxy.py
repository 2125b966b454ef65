"""A real HTTP or SOCKS5 proxy with a username and password, on loopback, for tests.

``PasswordProxy`` runs pproxy (from PyPI) as a subprocess: ``async with
PasswordProxy("socks5", "alice", "pw") as p`` gives ``p.url`` (password included, for the
config), ``p.port``, and ``p.connections()``: the targets (``host:port``) of the
connections it carried so far, read from its verbose log. ``--auth 0``: every connection
must log in (pproxy otherwise trusts an address for 30 days after one good login).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

_CARRIED = re.compile(r"^(?:http|socks5)\s+\S+\s+->\s+(\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PasswordProxy:
    def __init__(self, scheme: str, user: str, password: str) -> None:
        assert scheme in ("http", "socks5")
        self.scheme, self.user, self.password = scheme, user, password
        self.port = free_port()
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.user}:{self.password}@127.0.0.1:{self.port}"

    def with_password(self, password: str) -> str:
        return f"{self.scheme}://{self.user}:{password}@127.0.0.1:{self.port}"

    def connections(self, target_port: int | None = None) -> list[str]:
        found = [m.group(1) for line in list(self.lines) if (m := _CARRIED.match(line))]
        return [t for t in found if target_port is None or t.endswith(f":{target_port}")]

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Serving on"):
                self._ready.set()
        self._ready.set()

    def _start(self) -> None:
        listen = f"{self.scheme}://127.0.0.1:{self.port}#{self.user}:{self.password}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pproxy", "-l", listen, "-v", "--auth", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=Path(__file__).parent,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self._ready.wait(15)  # "Serving on ...", or its end

    async def __aenter__(self) -> PasswordProxy:
        await asyncio.to_thread(self._start)
        assert self.proc is not None
        assert self.proc.poll() is None and any(x.startswith("Serving on") for x in self.lines), (
            self.lines
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.proc.wait, 5)
            if self.proc.poll() is None:
                self.proc.kill()


def remote_ports(pid: int) -> set[int]:
    """The remote ports of the TCP connections process ``pid`` holds (from /proc)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/{table}") as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[9] in inodes and cols[3] == "01":  # ESTABLISHED
                    ports.add(int(cols[2].rsplit(":", 1)[1], 16))
    return ports


async def requests_of(sim, account: str) -> int:
    """REST requests the simulated exchange served for this account (its own record)."""
    return sum((await sim.admin.account(account))["requests"].values())
