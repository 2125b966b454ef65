"""One class per control command (circus style); each docstring is that command's protocol.

``COMMANDS`` maps a request message type to the class handling it.
"""

from __future__ import annotations

from typing import Any

from protocol import messages as m
from supervisor.commands.base import Command
from supervisor.commands.reload import Reload
from supervisor.commands.shutdown import Shutdown
from supervisor.commands.start import Start
from supervisor.commands.status import Status
from supervisor.commands.stop import Stop

COMMANDS: dict[type[m.Msg], type[Command[Any]]] = {
    c.request: c for c in (Status, Stop, Start, Reload, Shutdown)
}

__all__ = ["COMMANDS", "Command"]
