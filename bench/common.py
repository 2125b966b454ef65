"""Shared pieces of the benchmarks: the machine they ran on, sim processes, an events sink
standing in for the supervisor (for user processes run without one), small statistics.

Everything is loopback only and bounded in time: every wait has a deadline, every
process started here is stopped here (by its own pid).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import zmq
import zmq.asyncio

from protocol import messages as m
from protocol.codec import decode_event, encode_command

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
ALPHAVOL = str(Path(sys.executable).parent / "alphavol")


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def tree_state() -> dict[str, Any]:
    """The code under test: HEAD and the files changed but not committed (outside
    bench/). The tree is shared with people still working in it: a run whose tree
    changed between start and end measured a mix."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = [
        line[3:]
        for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
        if not line[3:].startswith("bench/")
    ]
    return {"head": git("rev-parse", "--short", "HEAD").strip(), "dirty": dirty}


def loadavg() -> list[float]:
    """1, 5 and 15 minute load averages (other work on the machine skews timings)."""
    with contextlib.suppress(OSError, ValueError):
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    return []


async def spawn_user(spec: Any, log_path: Path, *, append: bool = False):
    """``python -m userproc`` with ``spec`` (a ``UserSpec``) on its stdin and its stderr in
    ``log_path`` (appended to with ``append``): one real user process, as the benchmarks
    run it without a supervisor."""
    with open(log_path, "ab" if append else "wb") as err:  # noqa: ASYNC230
        proc = await asyncio.create_subprocess_exec(
            PYTHON,
            "-m",
            "userproc",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
            env=child_env(),
        )
    assert proc.stdin is not None
    proc.stdin.write(msgspec.msgpack.encode(spec))
    proc.stdin.close()
    return proc


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


class SimProcess:
    """``alphavol sim --port 0`` as a child process; ``base_url``/``ws_url`` from its stdout."""

    def __init__(self, **opts: Any) -> None:
        self.opts = opts
        self.proc: asyncio.subprocess.Process | None = None
        self.base_url = ""
        self.ws_url = ""

    async def start(self, within: float = 20.0) -> SimProcess:
        args = [ALPHAVOL, "sim", "--host", "127.0.0.1", "--port", "0"]
        for k, v in self.opts.items():
            args += [f"--{k.replace('_', '-')}", str(v)]
        self.proc = await asyncio.create_subprocess_exec(
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=child_env(),
            start_new_session=True,
        )
        assert self.proc.stdout is not None

        async def _read() -> None:
            while not (self.base_url and self.ws_url):
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    raise RuntimeError(f"sim exited early: {args}")
                if line.startswith("base_url="):
                    self.base_url = line.split("=", 1)[1].strip()
                elif line.startswith("ws_url="):
                    self.ws_url = line.split("=", 1)[1].strip()

        await asyncio.wait_for(_read(), within)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def stop(self, within: float = 5.0) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


class EventSink:
    """A ROUTER standing in for the supervisor of user processes started directly
    (``python -m userproc``): pings every peer, keeps each user's Summary and the
    wall-clock time each TradeDone arrived."""

    def __init__(self, endpoint: str, ping_every: float = 0.5) -> None:
        self.endpoint = endpoint
        self.ping_every = ping_every
        self.ctx = zmq.asyncio.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.sock.bind(endpoint)
        self.peers: set[bytes] = set()
        self.summaries: dict[str, m.Summary] = {}
        self.trades: dict[str, list[tuple[int, int]]] = {}  # (batch, index) per TradeDone
        self.errors: dict[str, list[str]] = {}
        self.chosen: dict[str, list[m.TokenChosen]] = {}  # target_token auto's choices
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._recv()), asyncio.create_task(self._ping())]

    async def _recv(self) -> None:
        while True:
            ident, data = await self.sock.recv_multipart()
            self.peers.add(ident)
            msg = decode_event(data)
            uid = ident.decode()
            if isinstance(msg, m.Summary):
                self.summaries[uid] = msg
            elif isinstance(msg, m.TradeDone):
                self.trades.setdefault(uid, []).append((msg.batch, msg.index))
            elif isinstance(msg, m.TokenChosen):
                self.chosen.setdefault(uid, []).append(msg)
            elif isinstance(msg, m.ErrorReport):
                self.errors.setdefault(uid, []).append(f"{msg.kind}: {msg.message}")

    async def _ping(self) -> None:
        ping = encode_command(m.Ping())
        while True:
            for p in list(self.peers):
                with contextlib.suppress(zmq.Again):
                    await self.sock.send_multipart([p, ping], flags=zmq.NOBLOCK)
            await asyncio.sleep(self.ping_every)

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.sock.close(linger=0)
        self.ctx.term()


async def stop_process(proc: asyncio.subprocess.Process, within: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``within`` seconds; always reaped."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), within)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    @property
    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.end
