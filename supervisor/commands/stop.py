"""``StopRequest(strategy_id?, user_id?, now=False)`` -> ``OkReply`` naming the users stopped.

Matching users still queued or in backoff stop at once; running ones get ``Drain`` (finish
the round trip, then exit) or, with ``now``, ``StopNow`` (cancel, sell leftovers, exit).
A drain asked for again is the same drain; ``now`` after a drain escalates it.
With a ``strategy_id`` only that strategy stops: a running one gets ``Drain``/``StopNow``
naming it, one still waiting its turn is taken out of the process's list; the user's other
strategies go on, and a user whose last strategy to run it was stops as a whole.
No match -> ``ErrorReply``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol import messages as m
from supervisor.commands.base import Command

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter


class Stop(Command[m.StopRequest]):
    name = "stop"
    request = m.StopRequest

    def execute(self, arbiter: Arbiter, req: m.StopRequest) -> m.Reply:
        users = arbiter.fleet.stop_users(req.strategy_id, req.user_id, now=req.now)
        if not users and arbiter.pool is not None and req.user_id:  # run by another node
            return arbiter.pool.stop_elsewhere(req)
        if not users:
            return m.ErrorReply(message="no running or queued user matches")
        how = "stopping now" if req.now else "draining"
        return m.OkReply(message=f"{how}: users {', '.join(users)}")
