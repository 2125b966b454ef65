"""Entry points of the user process.

``child_main(spec)`` runs inside the process the supervisor forked: logging (secrets
registered for masking first), a fresh event loop and ``zmq.asyncio.Context``, the few
signals a user process obeys, then the job (``userproc.process.UserProcess``) and
``sys.exit`` with its status. A user process ignores the terminal's signals (SIGINT,
SIGQUIT, SIGTSTP, SIGHUP): only the supervisor decides how its children stop. SIGTERM sent
to it directly drains (a second one: now), and ``PARENT_DEATH_SIGNAL`` (the kernel sends
it when the fork server, whose life is the supervisor's, dies) stops it at once as
SUPERVISOR_LOST. ``run_user`` is the whole job, testable in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from typing import NoReturn

import structlog
import zmq.asyncio

# imported here, not in the child: the fork server's template imports this module, so
# what it imports is shared by every user process instead of copied into each
from config.logsetup import add_secrets, configure_logging
from exchange.clock import SYSTEM_CLOCK, Clock
from protocol.exitcodes import Exit
from userproc.lifecycle import Lifecycle
from userproc.process import UserProcess
from userproc.spec import UserSpec

log = structlog.get_logger(__name__)

PARENT_DEATH_SIGNAL = signal.SIGUSR1
TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGHUP)


def child_main(spec: UserSpec) -> NoReturn:
    parent = os.getppid()  # the fork server, whose life is the supervisor's
    add_secrets(spec.credentials.secret_values())
    configure_logging(spec.logging.level, spec.logging.format, stream=sys.stderr)
    structlog.contextvars.bind_contextvars(user_id=spec.user_id)
    for sig in TERMINAL_SIGNALS:  # only the supervisor decides how we stop
        signal.signal(sig, signal.SIG_IGN)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    code = Exit.CRASH
    try:
        code = loop.run_until_complete(_child(spec, parent))
    except BaseException as exc:
        log.error("user_process_crashed", error=type(exc).__name__)
    finally:
        with contextlib.suppress(Exception):
            loop.close()
    sys.exit(int(code))


async def _child(spec: UserSpec, parent: int) -> Exit:
    life = Lifecycle(SYSTEM_CLOCK)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, life.on_signal, "SIGTERM")
    loop.add_signal_handler(PARENT_DEATH_SIGNAL, life.supervisor_lost, "its process died")
    _watch_parent(life, parent)
    ctx = zmq.asyncio.Context()
    try:
        return await run_user(spec, life=life, ctx=ctx)
    finally:
        ctx.term()


def _watch_parent(life: Lifecycle, parent: int) -> None:
    """Ask the kernel for ``PARENT_DEATH_SIGNAL`` when our parent (the fork server, which
    exits as soon as the supervisor is gone) dies; if it already has, act now."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(PARENT_DEATH_SIGNAL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the socket and heartbeats still tell
        return
    if os.getppid() != parent:
        life.supervisor_lost("its process died before we started")


async def run_user(
    spec: UserSpec,
    *,
    clock: Clock = SYSTEM_CLOCK,
    life: Lifecycle | None = None,
    ctx: zmq.asyncio.Context | None = None,
) -> Exit:
    return await UserProcess(spec, clock=clock, life=life, ctx=ctx).run()
