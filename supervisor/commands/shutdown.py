"""``ShutdownRequest(now=False)`` -> ``OkReply``.

The same as SIGTERM (``now``: as a second SIGTERM): drain every user, then exit.
"""

from __future__ import annotations

from protocol import messages as m
from supervisor.commands.base import Command


class Shutdown(Command):
    name = "shutdown"
    request = m.ShutdownRequest

    def execute(self, arbiter, req: m.ShutdownRequest) -> m.Reply:
        arbiter.request_shutdown(now=req.now)
        return m.OkReply(message="stopping now" if req.now else "draining, then exiting")
