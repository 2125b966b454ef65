"""Bounded HTTP doors: how the supervisor serves HTTP (metrics now, the dashboard next)
without letting any client stall or kill it.

A ``Door`` serves an aiohttp ``web.Application`` from the supervisor's own loop, with its
own accept loop instead of asyncio's:

- **a connection limit**: at most ``DoorLimits.max_connections`` open connections, and
  never more than the descriptors left after the reserve (below). A connection beyond that
  is not accepted: it waits in the kernel's backlog (``BACKLOG``) until a slot frees, and
  costs the supervisor no descriptor;
- **a header and idle timeout** (``idle_seconds``): a connection that has not sent a whole
  request within that time of connecting (the door's own timer), or of its last answer
  (aiohttp's keep-alive timer), is closed;
- **a body limit** (``body_bytes``): a larger ``Content-Length`` is answered 413 before a
  byte of it is read; a request taking longer than ``request_seconds`` is answered 503;
- **an exhausted descriptor table slows accept down**: EMFILE/ENFILE (or ENOBUFS/ENOMEM)
  stops accepting for a while, doubling from 50 ms up to 2 s, logged at most once a minute,
  instead of asyncio's error and traceback on every try;
- **malformed requests** are answered 400 (aiohttp) and logged as one warning per client
  per minute (``http_bad_request``), never a traceback each.

**The reserve.** ZeroMQ asserts (SIGABRT) when ``accept`` on its control or event socket
fails with EMFILE, and every user process then takes the supervisor for lost. So no client
of a door may take the descriptors the supervisor needs for itself: ``fd_reserve`` keeps
``FD_BASE`` plus ``FD_PER_USER`` per ``max_concurrent_users`` for ZeroMQ, the control
socket, the user processes and the books, and every door together holds at most the soft
``RLIMIT_NOFILE`` minus that. ``check_open_files`` (at ``run`` start) warns
(``open_files_limit_low``, with the fix) when the soft limit is too low for
``max_concurrent_users``.
"""

from __future__ import annotations

import asyncio
import errno
import resource
import socket
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

log = structlog.get_logger(__name__)

BACKLOG = 128
ACCEPT_BATCH = 32  # accepts per wake-up: the loop gets its turn between batches
FULL_RECHECK = 0.1  # seconds between looks at a full door
BACKOFF_MIN, BACKOFF_MAX = 0.05, 2.0
OUT_OF_DESCRIPTORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
WARN_EVERY = 60.0  # seconds: one warning per client (bad requests) or door (backoff)

FD_BASE = 128  # the supervisor itself: ZeroMQ, control socket, logs, books, notifications
FD_PER_USER = 4  # per concurrent user process: its event connection, pidfd, pipes
FD_PER_DOOR = 64  # what a door should be able to hold on top of the reserve


@dataclass(frozen=True)
class DoorLimits:
    max_connections: int = 64
    idle_seconds: float = 5.0
    body_bytes: int = 64 * 1024
    request_seconds: float | None = 30.0  # None: no bound (a long-lived stream)
    max_line_size: int = 8190
    max_field_size: int = 8190
    max_headers: int = 64


def fd_reserve(max_users: int) -> int:
    """Descriptors no door may take, for ``max_users`` concurrent user processes."""
    return FD_BASE + FD_PER_USER * max(1, max_users)


def soft_nofile() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def check_open_files(max_users: int, doors: int = 1) -> None:
    """At start: warn when the soft RLIMIT_NOFILE cannot hold the reserve and the doors.
    (Only a warning: raising it here would be a syscall the shipped unit's filter may
    forbid; the unit sets LimitNOFILE instead.)"""
    need = fd_reserve(max_users) + FD_PER_DOOR * doors
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    log.warning(
        "open_files_limit_low",
        soft_limit=soft,
        hard_limit=hard,
        needed=need,
        max_concurrent_users=max_users,
        fix=f"raise the limit to at least {need}: LimitNOFILE={max(need, 65536)} in the"
        f" systemd unit, or `ulimit -n {need}` before `alphavol run`",
    )


class _Throttle:
    """True at most once per ``every`` seconds per key (a bounded memory)."""

    def __init__(self, every: float = WARN_EVERY, keep: int = 1024) -> None:
        self.every, self.keep = every, keep
        self._last: dict[Any, float] = {}

    def __call__(self, key: Any) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            return False
        if len(self._last) >= self.keep:
            self._last = {k: t for k, t in self._last.items() if now - t < self.every}
        self._last[key] = now
        return True


class _ServerLog:
    """What aiohttp's request handler logs, made short: a malformed request (answered
    400 by aiohttp) is one warning per client per minute; a handler that raised is one
    error with its traceback per door per minute."""

    def __init__(self, door: str) -> None:
        self.door = door
        self._throttle = _Throttle()

    def exception(self, msg: str, *args: Any, exc_info: Any = None, **_: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else None
        if isinstance(exc, HttpProcessingError):
            client = str(args[0]) if args else "?"
            if self._throttle(client):
                log.warning(
                    "http_bad_request",
                    door=self.door,
                    client=client,
                    status=exc.code,
                    error=type(exc).__name__,
                )
        elif self._throttle(("handler", type(exc).__name__)):
            log.error("http_handler_failed", door=self.door, what=msg % args, exc_info=exc)

    def warning(self, msg: str, *args: Any, **_: Any) -> None:
        if self._throttle(("warning", msg)):
            log.warning("http_server_warning", door=self.door, what=msg % args)

    def debug(self, *args: Any, **kw: Any) -> None:
        pass

    info = debug
    error = exception


def _guard(
    limits: DoorLimits, started: weakref.WeakSet[Any]
) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.transport is not None:
            started.add(request.transport)  # its headers came in time
        length = request.content_length
        if length is not None and length > limits.body_bytes:
            resp = web.Response(status=413, text="request body too large\n")
            resp.force_close()
            return resp
        if limits.request_seconds is None:
            return await handler(request)
        try:
            async with asyncio.timeout(limits.request_seconds):
                return await handler(request)
        except TimeoutError:
            return web.Response(status=503, text="the request took too long\n")

    return guard


def new_app(limits: DoorLimits) -> web.Application:
    """An application whose body reads stop at ``limits.body_bytes``."""
    return web.Application(client_max_size=limits.body_bytes)


class Door:
    """One bounded HTTP listener (``await start()``, ``await close()``). ``app`` is not
    frozen yet (the door adds its middleware); build it with ``new_app``. ``reserve``:
    descriptors no client may take (``fd_reserve(max_concurrent_users)``)."""

    _all: ClassVar[weakref.WeakSet[Door]] = weakref.WeakSet()  # every door shares the descriptors

    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        *,
        name: str,
        reserve: int,
        limits: DoorLimits | None = None,
    ) -> None:
        self.app, self.host, self.port, self.name = app, host, port, name
        self.limits = limits or DoorLimits()
        self.reserve = reserve
        self._open: set[socket.socket] = set()
        self._started: weakref.WeakSet[Any] = weakref.WeakSet()  # transports with a request
        self._tasks: set[asyncio.Task[Any]] = set()
        self._socks: list[socket.socket] = []
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delay = 0.0
        self._closed = False
        self._throttle = _Throttle()

    @property
    def addresses(self) -> list[Any]:
        return [s.getsockname() for s in self._socks]

    @property
    def open_connections(self) -> int:
        self._open = {s for s in self._open if s.fileno() != -1}
        return len(self._open)

    async def start(self) -> None:
        """Bind and listen (raises OSError when the address cannot be bound)."""
        self.app.middlewares.append(_guard(self.limits, self._started))
        lim = self.limits
        self._runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=0.5,
            keepalive_timeout=lim.idle_seconds,
            lingering_time=min(1.0, lim.idle_seconds),  # reading a refused body: 10 s else
            logger=_ServerLog(self.name),
            max_line_size=lim.max_line_size,
            max_field_size=lim.max_field_size,
            max_headers=lim.max_headers,
        )
        await self._runner.setup()
        self._loop = loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            bound: set[tuple[int, Any]] = set()
            for family, kind, proto, _, addr in infos:
                if (family, addr) in bound:
                    continue
                bound.add((family, addr))
                sock = socket.socket(family, kind, proto)
                self._socks.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(addr)
                sock.listen(BACKLOG)
                sock.setblocking(False)
        except OSError:
            await self.close()
            raise
        Door._all.add(self)
        for sock in self._socks:
            loop.add_reader(sock, self._readable, sock)

    async def close(self) -> None:
        self._closed = True
        Door._all.discard(self)
        for sock in self._socks:
            if self._loop is not None and sock.fileno() != -1:
                self._loop.remove_reader(sock)
            sock.close()
        self._socks.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        for conn in self._open:
            conn.close()
        self._open.clear()

    # ------------------------------------------------------------ accepting
    def _room(self) -> bool:
        if self.open_connections >= self.limits.max_connections:
            return False
        taken = sum(d.open_connections for d in Door._all)
        return taken < soft_nofile() - self.reserve

    def _readable(self, sock: socket.socket) -> None:
        if self._closed:
            return
        for _ in range(ACCEPT_BATCH):
            if not self._room():
                self._pause(sock, FULL_RECHECK)
                return
            try:
                conn, _addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in OUT_OF_DESCRIPTORS:
                    self._backoff(sock, exc)
                    return
                continue  # ECONNABORTED and the like: that client is gone already
            self._delay = 0.0
            conn.setblocking(False)
            self._open.add(conn)
            task = asyncio.ensure_future(self._serve(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: socket.socket) -> None:
        assert self._loop is not None and self._runner is not None
        try:
            transport, _ = await self._loop.connect_accepted_socket(self._runner.server, conn)  # type: ignore[arg-type]
        except Exception:  # the client left already, or the door is closing
            conn.close()
            return
        # the header timeout, whatever aiohttp's version does before a first request
        self._loop.call_later(self.limits.idle_seconds, self._headers_due, transport)

    def _headers_due(self, transport: asyncio.BaseTransport) -> None:
        if transport not in self._started and not transport.is_closing():
            transport.close()

    def _pause(self, sock: socket.socket, delay: float) -> None:
        assert self._loop is not None
        self._loop.remove_reader(sock)
        self._loop.call_later(delay, self._resume, sock)

    def _resume(self, sock: socket.socket) -> None:
        if not self._closed and sock.fileno() != -1 and self._loop is not None:
            self._loop.add_reader(sock, self._readable, sock)

    def _backoff(self, sock: socket.socket, exc: OSError) -> None:
        self._delay = min(BACKOFF_MAX, max(BACKOFF_MIN, self._delay * 2))
        if self._throttle("backoff"):
            log.warning(
                "door_out_of_descriptors",
                door=self.name,
                error=errno.errorcode.get(exc.errno or 0, str(exc.errno)),
                open_connections=self.open_connections,
                retry_in=self._delay,
            )
        self._pause(sock, self._delay)
