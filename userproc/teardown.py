"""Cancelling a process's own tasks on the way out, bounded.

A user process that has finished its work must exit: one task that does not end when
cancelled (a cancellation lost in a race, a library that waits on the network) must not
keep it alive until the supervisor kills it. ``cancel_and_wait`` cancels, waits at most
``within`` seconds, and names what was left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog

log = structlog.get_logger(__name__)

# How long closing the user stream, or the tasks of one part, may take on the way out
# (a websocket's close handshake is given 2 s by the stream itself).
TEARDOWN_SECONDS = 3.0


async def cancel_and_wait(tasks: Iterable[asyncio.Task], within: float, what: str) -> None:
    pending = [t for t in tasks if not t.done()]
    for t in pending:
        t.cancel()
    if not pending:
        return
    _, stuck = await asyncio.wait(pending, timeout=within)
    if stuck:
        log.warning(
            "tasks_left_running",
            what=what,
            tasks=sorted(t.get_name() for t in stuck),
            waited_seconds=within,
        )
