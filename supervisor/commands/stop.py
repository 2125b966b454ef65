"""``StopRequest(strategy_id?, user_id?, now=False)`` -> ``OkReply`` naming the users stopped.

Matching users still queued or in backoff stop at once; running ones get ``Drain`` (finish
the round trip, then exit) or, with ``now``, ``StopNow`` (cancel, sell leftovers, exit).
A drain asked for again is the same drain; ``now`` after a drain escalates it.
A user's process runs all its strategies, so stopping a strategy stops its users' processes.
No match -> ``ErrorReply``.
"""

from __future__ import annotations

from protocol import messages as m
from supervisor.commands.base import Command


class Stop(Command):
    name = "stop"
    request = m.StopRequest

    def execute(self, arbiter, req: m.StopRequest) -> m.Reply:
        users = arbiter.fleet.stop_users(req.strategy_id, req.user_id, now=req.now)
        if not users:
            return m.ErrorReply(message="no running or queued user matches")
        how = "stopping now" if req.now else "draining"
        return m.OkReply(message=f"{how}: users {', '.join(users)}")
