"""The fork server: a copy of the supervisor, made before it started anything, that forks
the user processes.

Why: a user process needs aiohttp, ZeroMQ, msgspec, structlog and our own modules (about
25 MiB of Python objects). The supervisor imports all of them first (``template.preload``,
which ends with ``gc.freeze()``), then, while it still has one thread and no event loop,
``os.fork()``s this server. Every page of those modules is then shared, copy-on-write, by
the supervisor, the server and every user process, instead of living once in the
supervisor and once more in a separately started server (multiprocessing's forkserver,
which also needed a resource-tracker process of its own). When the supervisor already
runs threads (an embedding program or a test), ``python -m supervisor.forkserver`` is
started instead: the same server, without the sharing.

The server has no thread and no event loop: it polls its socket and a self-pipe for
SIGCHLD. It leaves the terminal (``setsid``) so terminal signals reach the supervisor
alone, drops the secrets of its environment (the store's key, systemd's sockets), and
exits as soon as the supervisor is gone (its socket reaches end-of-file, and the kernel's
parent-death signal). Its children, the user processes, see it exit (their own
parent-death signal) and stop trading at once.

Protocol over a private socketpair, msgpack maps framed by a 4-byte length:

* supervisor -> server: ``{"op": "spawn", "target": "module:function", "spec": bytes,
  "nice": int}``; the server answers ``{"op": "spawned", "pid": int}`` or ``{"op":
  "failed", "error": str}``, in order;
* server -> supervisor, whenever a child ends: ``{"op": "exited", "pid": int, "code":
  int}`` (``code`` as ``os.waitstatus_to_exitcode``: negative for a signal).

The spec (only that user's credentials) travels over the socketpair: never on a command
line or in the environment.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import signal
import socket
import struct
import sys
import traceback
from typing import Any

import msgspec

PR_SET_PDEATHSIG = 1
_LEN = struct.Struct(">I")
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode

# Never inherited by user processes: the credentials store's key (a child gets only its own
# user's session, in its spec) and systemd's notify socket (only the supervisor talks to it).
SCRUBBED_ENV = (
    "ALPHAVOL_SECRET_KEY",
    "ALPHAVOL_SECRET_KEY_FILE",
    "CREDENTIALS_DIRECTORY",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
)


def frame(msg: dict[str, Any]) -> bytes:
    data = _encode(msg)
    return _LEN.pack(len(data)) + data


class Frames:
    """Collects bytes; yields the complete messages."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            (n,) = _LEN.unpack_from(self.buf)
            if len(self.buf) < 4 + n:
                break
            out.append(_decode(bytes(self.buf[4 : 4 + n])))
            del self.buf[: 4 + n]
        return out


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel for ``sig`` when the parent dies (Linux; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


# ------------------------------------------------------------------------- the server
def serve(sock: socket.socket, parent: int) -> None:
    """The server's life: never returns (``os._exit``)."""
    from supervisor.template import TERMINAL_SIGNALS, set_title

    set_title("alphavol: fork server")
    die_with_parent()
    if os.getppid() != parent:
        os._exit(0)
    with contextlib.suppress(OSError):
        os.setsid()  # leave the terminal: its signals reach the supervisor alone
    for sig in TERMINAL_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for key in SCRUBBED_ENV:
        os.environ.pop(key, None)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    code = 0
    try:
        _loop(sock, wake_r)
    except BaseException:  # a bug here: the supervisor sees end-of-file and says so
        traceback.print_exc()
        code = 1
    os._exit(code)


def _loop(sock: socket.socket, wake_r: int) -> None:
    frames = Frames()
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    while True:
        try:
            events = poller.poll()
        except InterruptedError:
            events = []
        for fd, _ev in events:
            if fd == wake_r:
                os.read(wake_r, 4096)
                continue
            data = sock.recv(65536)
            if not data:  # the supervisor is gone: so are we (our children follow)
                return
            for msg in frames.feed(data):
                sock.sendall(frame(_spawn(msg, sock, wake_r)))
        _reap(sock)


def _spawn(msg: dict[str, Any], sock: socket.socket, wake_r: int) -> dict[str, Any]:
    try:
        pid = os.fork()
    except OSError as exc:
        return {"op": "failed", "error": f"fork failed: {exc}"}
    if pid:
        return {"op": "spawned", "pid": pid}
    _child(msg, sock, wake_r)  # never returns
    return {}


def _child(msg: dict[str, Any], sock: socket.socket, wake_r: int) -> None:
    code = 1
    try:
        sock.close()
        os.close(wake_r)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        from supervisor.template import run_child
        from userproc.spec import UserSpec

        spec = msgspec.msgpack.decode(msg["spec"], type=UserSpec)
        run_child(msg["target"], spec, int(msg.get("nice", 0)))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        sock.sendall(frame({"op": "exited", "pid": pid, "code": code}))


def main() -> None:
    """``python -m supervisor.forkserver FD``: the server on an inherited socket."""
    from supervisor.template import preload

    sock = socket.socket(fileno=int(sys.argv[1]))
    preload()
    serve(sock, os.getppid())


if __name__ == "__main__":
    main()
