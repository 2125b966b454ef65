"""Forking user processes from a pre-imported template, and noticing when they exit.

A multiprocessing "forkserver" context: the fork server imports ``supervisor.template``
(and with it ``userproc.main``) once; each user process is a fork of it. The child's only
argument, its ``UserSpec`` with only that user's credentials, is pickled over the fork
server's private pipe: never on a command line or in the environment.

The fork server reaps its children, and each ``Process.sentinel`` becomes readable when
the child exits; the supervisor watches sentinels with ``loop.add_reader``, so exits are
handled as events, and no zombie is ever left.

Never on the event loop: ``Process.start()`` blocks until the fork server has forked (up
to a second for the first one, while the server imports the template; tens of ms each
under load). A blocked loop sends no Pings, so early children would give up on us
(SUPERVISOR_LOST) while later ones are still being forked. Every ``multiprocessing``
call on a user process (start, join, close) therefore runs in one worker thread, one at a
time: one thread so ``Process.start()``'s housekeeping of the other children never races
a join, and a reap waits behind at most the fork in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.spawn
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


# Set for the fork server (and so every user process) unless the operator chose otherwise:
# glibc reads it at process start. Without it each thread that mallocs (zmq's I/O thread,
# the resolver's) gets its own arena of private, mostly idle pages in every user process.
CHILD_ENV_DEFAULTS = {"MALLOC_ARENA_MAX": "2"}

# User processes lower their own priority by this much right after the fork (0 keeps the
# supervisor's): with hundreds of busy children on a few cores, the supervisor would
# otherwise wait its turn behind them, and status replies and heartbeats with it.
NICE_ENV = "ALPHAVOL_CHILD_NICE"
DEFAULT_CHILD_NICE = 5


def child_nice_from_env() -> int:
    raw = os.environ.get(NICE_ENV, "").strip()
    if not raw:
        return DEFAULT_CHILD_NICE
    try:
        return int(raw)
    except ValueError:
        log.warning("bad_child_nice", value=raw, using=DEFAULT_CHILD_NICE)
        return DEFAULT_CHILD_NICE


@contextlib.contextmanager
def _scrubbed_environment():
    """The fork server copies our environment when it starts (on the first spawn): hide
    the secrets from it for that moment, then put them back for the supervisor."""
    saved = {k: os.environ.pop(k) for k in SCRUBBED_ENV if k in os.environ}
    added = [k for k in CHILD_ENV_DEFAULTS if k not in os.environ]
    os.environ.update({k: CHILD_ENV_DEFAULTS[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)
        os.environ.update(saved)


def ensure_fork_server() -> None:
    """Start the fork server (and multiprocessing's resource tracker) if they are not
    running, from a scrubbed environment. Cheap when they run: call it on the loop thread
    before each start, so the worker thread never starts them with the secrets in view.

    ``MAIN_PATH_ENV`` tells the template which script is our ``__main__`` (see
    ``supervisor.template``), so children do not run it again."""
    main_path = multiprocessing.spawn.get_preparation_data("alphavol").get("init_main_from_path")
    from supervisor.template import FORKSERVER_ENV, MAIN_PATH_ENV

    with _scrubbed_environment():
        if main_path:
            os.environ[MAIN_PATH_ENV] = main_path
        os.environ[FORKSERVER_ENV] = "1"
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            os.environ.pop(MAIN_PATH_ENV, None)
            os.environ.pop(FORKSERVER_ENV, None)


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
    def __init__(self, *, target: str = DEFAULT_TARGET, nice: int | None = None) -> None:
        self.target = target
        self.nice = child_nice_from_env() if nice is None else nice
        self._worker: ThreadPoolExecutor | None = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alphavol-fork")
        return self._worker

    async def start(
        self,
        spec: Any,
        *,
        on_exit: Callable[[Child, int | None], None],
        now: float,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Child:
        """Fork the user's process without blocking the loop; ``on_exit(child, exitcode)``
        runs in the loop once it died. Raises what ``Process.start()`` raised."""
        from supervisor.template import run_child  # module-level function: picklable by name

        loop = loop or asyncio.get_running_loop()
        proc = _ctx.Process(
            target=run_child,
            args=(self.target, spec, self.nice),
            name=f"alphavol-user-{spec.user_id}",
            daemon=False,
        )
        ensure_fork_server()
        pool = self._pool()
        fut = loop.run_in_executor(pool, proc.start)
        try:
            await asyncio.shield(fut)
        except asyncio.CancelledError:
            # We are going away while the fork is in flight: the process must not outlive
            # us unsupervised (it would trade until its heartbeat timeout).
            def _kill_when_forked(f: asyncio.Future) -> None:
                if not f.cancelled() and f.exception() is None and proc.pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)

            fut.add_done_callback(_kill_when_forked)
            raise
        assert proc.pid is not None  # started
        child = Child(user_id=spec.user_id, process=proc, pid=proc.pid, started=now)
        sentinel = proc.sentinel

        def _collect() -> int | None:  # in the worker thread: see the module docstring
            proc.join(0)
            code = proc.exitcode
            with contextlib.suppress(ValueError):
                proc.close()
            return code

        def _exited(f: asyncio.Future) -> None:
            try:
                code = f.result()
            except Exception:  # cannot happen short of a bug; still tell the arbiter
                log.exception("user_process_reap_failed", user_id=child.user_id, pid=child.pid)
                code = None
            log.info("user_process_exited", user_id=child.user_id, pid=child.pid, exitcode=code)
            on_exit(child, code)

        def _reap() -> None:
            loop.remove_reader(sentinel)
            loop.run_in_executor(pool, _collect).add_done_callback(_exited)

        loop.add_reader(sentinel, _reap)
        log.info("user_process_started", user_id=spec.user_id, pid=proc.pid)
        return child
