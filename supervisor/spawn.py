"""Starting user processes, and noticing when they exit, through the fork server.

``start_fork_server()`` is called by the supervisor's entry point (``alphavol run``,
``quick``) while the process still has one thread: it preloads the user-process modules
and forks the fork server from that state (see ``supervisor.forkserver``), so their pages
are shared by every process of the service. A ``Spawner`` created later uses that
server; if none was started (an embedding program, a test that runs the arbiter in a
process that already has threads), it starts ``python -m supervisor.forkserver`` on first
use: the same protocol, without the sharing.

``Spawner.start(spec, on_exit=, now=)`` asks the server for a child and returns its
``Child`` once forked; the server reports every exit, and ``on_exit(child, exitcode)``
runs on the event loop (``exitcode`` negative for a signal, None if the server itself
died: then its children die too, by their parent-death signal, and are treated as
crashed). Nothing here blocks the loop: the server's socket is watched with
``loop.add_reader``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog

from supervisor.forkserver import SCRUBBED_ENV, Frames, frame, serve

log = structlog.get_logger(__name__)

DEFAULT_TARGET = "userproc.main:child_main"

# User processes lower their own priority by this much right after the fork (0 keeps the
# supervisor's): with hundreds of busy children on a few cores, the supervisor would
# otherwise wait its turn behind them, and status replies and heartbeats with it.
NICE_ENV = "ALPHAVOL_CHILD_NICE"
DEFAULT_CHILD_NICE = 10
M_ARENA_MAX = -8  # glibc mallopt: at most this many malloc arenas


def child_nice_from_env() -> int:
    raw = os.environ.get(NICE_ENV, "").strip()
    if not raw:
        return DEFAULT_CHILD_NICE
    try:
        return int(raw)
    except ValueError:
        log.warning("bad_child_nice", value=raw, using=DEFAULT_CHILD_NICE)
        return DEFAULT_CHILD_NICE


@dataclass
class Child:
    user_id: str
    process: Any  # kept for callers of the old API: always None now
    pid: int
    started: float  # monotonic

    def signal(self, sig: int) -> bool:
        try:
            os.kill(self.pid, sig)
            return True
        except ProcessLookupError:
            return False

    def kill(self) -> bool:
        return self.signal(signal.SIGKILL)


class ForkServerClient:
    """The supervisor's end of the fork server's socket."""

    def __init__(self, sock: socket.socket, pid: int, *, shared: bool) -> None:
        self.sock = sock
        self.pid = pid
        self.shared = shared  # forked from this process (pages shared) or started apart
        self.alive = True
        self._frames = Frames()
        self._answers: asyncio.Queue[dict[str, Any]] | None = None
        self._exits: dict[int, Callable[[int | None], None]] = {}
        self._early: dict[int, int] = {}  # exits reported before their spawn answer was read
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _attach(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._loop is None:  # logged here: it starts before logging is set up
            log.info("fork_server", pid=self.pid, shared=self.shared)
        self._loop = loop
        self._answers = asyncio.Queue()
        self._lock = asyncio.Lock()
        self.sock.setblocking(False)
        loop.add_reader(self.sock.fileno(), self._readable)

    async def spawn(
        self, target: str, spec: bytes, nice: int, on_exit: Callable[[int | None], None]
    ) -> int:
        self._attach()
        assert self._lock is not None and self._answers is not None
        async with self._lock:  # one request in flight: answers come in order
            if not self.alive:
                raise RuntimeError("the fork server is gone")
            request = frame({"op": "spawn", "target": target, "spec": spec, "nice": nice})
            try:
                self.sock.sendall(request)
            except OSError:  # it died since: say so to its children's owners
                self._gone()
                raise
            answer = await self._answers.get()
        if answer.get("op") != "spawned":
            raise RuntimeError(str(answer.get("error") or answer))
        pid = int(answer["pid"])
        if pid in self._early:  # it died at once: tell the caller once it has the child
            asyncio.get_running_loop().call_soon(on_exit, self._early.pop(pid))
        else:
            self._exits[pid] = on_exit
        return pid

    def _readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._gone()
            return
        for msg in self._frames.feed(data):
            if msg.get("op") == "exited":
                pid, code = int(msg["pid"]), int(msg["code"])
                done = self._exits.pop(pid, None)
                if done is not None:
                    done(code)
                else:
                    self._early[pid] = code
            elif self._answers is not None:
                self._answers.put_nowait(msg)

    def _gone(self) -> None:
        """The server died: its children die with it (parent-death signal); say so."""
        self.alive = False
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
        log.error("fork_server_lost", pid=self.pid, children=len(self._exits))
        if self._answers is not None:
            self._answers.put_nowait({"op": "failed", "error": "the fork server is gone"})
        exits, self._exits = self._exits, {}
        for done in exits.values():
            done(None)

    def close(self) -> None:
        if self._loop is not None and self.alive:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.sock.fileno())
        self.sock.close()


_server: ForkServerClient | None = None


def start_fork_server() -> ForkServerClient:
    """Fork the fork server from this process now (it must still have one thread), or
    return the one already started."""
    global _server
    if _server is not None and _server.alive:
        return _server
    from supervisor.template import preload

    _limit_malloc_arenas()
    if threading.active_count() != 1:  # forking now could copy a held lock
        _server = _exec_server()
        return _server
    # As the gc docs advise for fork without exec: no collection while the template is
    # built (it would leave freed holes in pages the children then fill, copying them),
    # frozen right before the fork, collection back on at once in the parent.
    gc.disable()
    preload()
    parent = os.getpid()
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the fork server
        ours.close()
        serve(theirs, parent)  # never returns
    gc.enable()
    theirs.close()
    _server = ForkServerClient(ours, pid, shared=True)
    return _server


def _exec_server() -> ForkServerClient:
    ours, theirs = socket.socketpair()
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor.forkserver", str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        env=env,
    )
    theirs.close()
    client = ForkServerClient(ours, proc.pid, shared=False)
    client.popen = proc  # type: ignore[attr-defined]  # reaped when it exits
    return client


def _limit_malloc_arenas() -> None:
    """glibc gives each thread that mallocs (zmq's I/O thread, the resolver's) an arena of
    private, mostly idle pages; two are plenty. ``MALLOC_ARENA_MAX`` from the environment
    wins (glibc read it at start)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 2)


class Spawner:
    def __init__(self, *, target: str = DEFAULT_TARGET, nice: int | None = None) -> None:
        self.target = target
        self.nice = child_nice_from_env() if nice is None else nice
        self._own: ForkServerClient | None = None  # started apart, for this spawner only

    def _server(self) -> ForkServerClient:
        """The fork server forked early from this process, else one of our own, started
        now from the loop's thread (its parent-death signal follows the thread that
        started it: a worker thread's exit would kill it)."""
        if _server is not None and _server.alive:
            return _server
        if self._own is None or not self._own.alive:
            self._own = _exec_server()
        return self._own

    async def start(
        self,
        spec: Any,
        *,
        on_exit: Callable[[Child, int | None], None],
        now: float,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Child:
        """Fork the user's process; ``on_exit(child, exitcode)`` runs in the loop once it
        died. Raises what the fork raised."""
        server = self._server()
        holder: list[Child] = []

        def _exited(code: int | None) -> None:
            if holder:
                log.info(
                    "user_process_exited", user_id=spec.user_id, pid=holder[0].pid, exitcode=code
                )
                on_exit(holder[0], code)

        pid = await server.spawn(self.target, msgspec.msgpack.encode(spec), self.nice, _exited)
        child = Child(user_id=spec.user_id, process=None, pid=pid, started=now)
        holder.append(child)
        log.info("user_process_started", user_id=spec.user_id, pid=pid)
        return child
