"""``StartRequest(strategy_id?, user_id?)`` -> ``OkReply`` naming the users queued again.

Users that are STOPPED, FATAL, DONE or SKIPPED are checked again and queued (crash history
cleared): the way to resume after a stop, or after storing a fresh session for a FATAL user.
No match -> ``ErrorReply``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol import messages as m
from supervisor.commands.base import Command

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter


class Start(Command[m.StartRequest]):
    name = "start"
    request = m.StartRequest

    def execute(self, arbiter: Arbiter, req: m.StartRequest) -> m.Reply:
        if arbiter.stopping:
            return m.ErrorReply(message="the supervisor is stopping")
        if arbiter.pool is not None and req.user_id:  # any node of the pool may run it
            return arbiter.pool.start_anywhere(req)
        users = arbiter.fleet.start_users(req.strategy_id, req.user_id)
        if not users:
            return m.ErrorReply(message="no stopped or finished user matches")
        return m.OkReply(message=f"queued: users {', '.join(users)}")
