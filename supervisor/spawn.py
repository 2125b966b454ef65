"""Forking user processes from a pre-imported template, and noticing when they exit.

A multiprocessing "forkserver" context: the fork server imports ``supervisor.template``
(and with it ``userproc.main``) once; each user process is a fork of it. The child's only
argument, its ``UserSpec`` with only that user's credentials, is pickled over the fork
server's private pipe: never on a command line or in the environment.

The fork server reaps its children, and each ``Process.sentinel`` becomes readable when
the child exits; the supervisor watches sentinels with ``loop.add_reader``, so exits are
handled as events, and no zombie is ever left.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)

DEFAULT_TARGET = "userproc.main:child_main"

_ctx = multiprocessing.get_context("forkserver")
_ctx.set_forkserver_preload(["supervisor.template"])


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


@contextlib.contextmanager
def _scrubbed_environment():
    """The fork server copies our environment when it starts (on the first spawn): hide
    the secrets from it for that moment, then put them back for the supervisor."""
    saved = {k: os.environ.pop(k) for k in SCRUBBED_ENV if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


@dataclass
class Child:
    user_id: str
    process: Any  # multiprocessing.Process
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


class Spawner:
    def __init__(self, *, target: str = DEFAULT_TARGET) -> None:
        self.target = target

    def start(
        self,
        spec: Any,
        *,
        on_exit: Callable[[Child, int | None], None],
        now: float,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Child:
        """Fork the user's process; ``on_exit(child, exitcode)`` runs in the loop once it died."""
        from supervisor.template import run_child  # module-level function: picklable by name

        loop = loop or asyncio.get_running_loop()
        proc = _ctx.Process(
            target=run_child,
            args=(self.target, spec),
            name=f"alphavol-user-{spec.user_id}",
            daemon=False,
        )
        with _scrubbed_environment():
            proc.start()
        child = Child(user_id=spec.user_id, process=proc, pid=proc.pid, started=now)
        sentinel = proc.sentinel

        def _reap() -> None:
            loop.remove_reader(sentinel)
            proc.join(0)
            code = proc.exitcode
            try:
                proc.close()
            except ValueError:
                pass
            log.info("user_process_exited", user_id=child.user_id, pid=child.pid, exitcode=code)
            on_exit(child, code)

        loop.add_reader(sentinel, _reap)
        log.info("user_process_started", user_id=spec.user_id, pid=proc.pid)
        return child
