"""The runtime directory and the supervisor's two ZeroMQ sockets in it.

``events`` (ROUTER) is where user processes connect (DEALER, routing id = user id): events
in, commands out. ``control`` (ROUTER) answers the CLI (``supervisor.control``). Both live
in the 0700 runtime directory, 0600 themselves, and are removed on the way out. A stale
``control.ipc`` nobody answers means the last supervisor was killed: ``orphan_wait`` says
how long to wait before starting anyone, so that two processes never trade for one user.
Once bound, it records where it serves for its config file (``config.serving``), so the
control commands find it even through a config that lost its ``paths:``; the record goes
with the sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import structlog
import zmq
import zmq.asyncio

from config import serving
from protocol import messages as m
from protocol.addresses import (
    CONTROL_SOCKET,
    EVENTS_SOCKET,
    control_endpoint,
    ensure_runtime_dir,
    events_endpoint,
)
from protocol.codec import encode_command
from supervisor.errors import SupervisorError

log = structlog.get_logger(__name__)

# After a supervisor was killed: how long its orphans get to finish their stop before
# a new supervisor starts users (one that is still stopping holds its journal's lock,
# so a start that comes too soon fails as a crash and is retried after a backoff).
ORPHAN_WAIT = 5.0


class Runtime:
    def __init__(self, path: str | Path, *, config_file: str | None = None) -> None:
        self.path = Path(path)
        self.orphan_wait = 0.0
        # the config file it serves for (None: a config not read from a file)
        self.config_file = config_file if config_file and Path(config_file).is_file() else None

    def check(self) -> None:
        """Create the directory; refuse (``SupervisorError``) if a supervisor answers there."""
        ensure_runtime_dir(self.path)
        if not (self.path / CONTROL_SOCKET).exists():
            return
        from supervisor.client import ControlClient, SupervisorNotRunning

        try:
            reply = ControlClient(self.path).request(m.StatusRequest(), timeout=0.5)
        except SupervisorNotRunning:
            # The last supervisor was killed. Its user processes noticed at once (parent
            # death signal, closed socket) and are finishing their stop: give them a
            # moment before starting anyone (their journals keep a later start safe).
            self.orphan_wait = ORPHAN_WAIT
            return
        pid = getattr(reply, "pid", "?")
        raise SupervisorError(f"another supervisor (pid {pid}) already serves {self.path}")

    def bind(self) -> None:
        self.ctx = zmq.asyncio.Context()
        self.events = self.ctx.socket(zmq.ROUTER)
        self.events.setsockopt(zmq.LINGER, 0)
        self.events.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.events.bind(events_endpoint(self.path))
        self.control = self.ctx.socket(zmq.ROUTER)
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.bind(control_endpoint(self.path))
        for name in (EVENTS_SOCKET, CONTROL_SOCKET):
            with contextlib.suppress(OSError):
                os.chmod(self.path / name, 0o600)
        if self.config_file is not None:
            try:
                serving.write_record(self.config_file, self.path, os.getpid())
            except OSError as exc:  # a read-only home: `--runtime-dir` still finds us
                log.info("serving_not_recorded", where=str(exc.filename), reason=exc.strerror)

    def send(self, user_id: str, msg: m.Command) -> None:
        """Queue a command to a user process; never waits (ROUTER drops it if it is gone)."""
        fut = self.events.send_multipart([user_id.encode(), encode_command(msg)], flags=zmq.NOBLOCK)
        if isinstance(fut, asyncio.Future):
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def receive(self) -> tuple[str, bytes] | None:
        """The next frame from a user process: (user id, payload); None for a malformed one."""
        frames = await self.events.recv_multipart()
        if len(frames) < 2:
            return None
        return frames[0].decode(errors="replace"), frames[-1]

    def close(self) -> None:
        self.events.close(0)
        self.control.close(0)
        self.ctx.term()
        for name in (EVENTS_SOCKET, CONTROL_SOCKET):
            with contextlib.suppress(OSError):
                (self.path / name).unlink()
        if self.config_file is not None:
            serving.remove_record(self.config_file, os.getpid())
