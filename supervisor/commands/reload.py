"""``ReloadRequest`` -> ``OkReply`` or ``ErrorReply`` listing every config problem.

Rereads the config file (as SIGHUP does). New users and strategies are checked and queued,
removed users drain, changed settings go to running processes as ``UpdateSettings``
(applied from their next batch). A broken config changes nothing. The file is read in
a process of its own (``config.reader``), so the reply comes when it is read: at once
for a file refused unread (a FIFO, over 1 MiB), within the reader's deadline otherwise;
the control socket answers other requests meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol import messages as m
from supervisor.commands.base import Command

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter


class Reload(Command[m.ReloadRequest]):
    name = "reload"
    request = m.ReloadRequest

    async def execute(self, arbiter: Arbiter, req: m.ReloadRequest) -> m.Reply:
        errors = await arbiter.reload()
        if errors:
            return m.ErrorReply(message="config refused, old one kept:\n" + "\n".join(errors))
        return m.OkReply(message="config reloaded")
