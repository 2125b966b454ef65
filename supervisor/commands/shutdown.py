"""``ShutdownRequest(now=False)`` -> ``OkReply``.

Drain every user, then exit, as SIGTERM does; asking again while a drain is under way
changes nothing. ``now``: stop them now (as a second SIGTERM).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol import messages as m
from supervisor.commands.base import Command

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter


class Shutdown(Command[m.ShutdownRequest]):
    name = "shutdown"
    request = m.ShutdownRequest

    def execute(self, arbiter: Arbiter, req: m.ShutdownRequest) -> m.Reply:
        arbiter.request_shutdown(now=req.now)
        return m.OkReply(message="stopping now" if req.now else "draining, then exiting")
