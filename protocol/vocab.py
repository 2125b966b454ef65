"""The closed vocabularies of the wire: every string a phase, state, basis or error kind
field of a message may carry (``Literal`` types, and ``RowState`` a ``StrEnum`` the
supervisor uses as is: the values on the wire are these plain strings, and a decoder
refuses any other).

They mirror enums the protocol may not import (``userproc.lifecycle.Phase``,
``supervisor.states.State``, ``protocol.exitcodes.Exit``); tests/test_protocol.py checks
that each list names every member of its enum.
"""

from __future__ import annotations

import enum
from typing import Literal

from config.settings import VolumeBasis

# a user process's own phase (``userproc.lifecycle.Phase``)
UserPhase = Literal[
    "starting",
    "reconciling",
    "running",
    "checking",
    "trading",
    "interval",
    "settling",
    "waiting_price",
    "waiting_stream",
    "draining",
    "stopping",
    "paused",
    "done",
]
# a strategy's phase in ``status``: its process's, or "queued" (waiting its turn)
RowPhase = UserPhase | Literal["queued"]


# a strategy's row in ``status``: ``supervisor.states.State``, and QUEUED (waiting its turn
# in its user's running process, which works on another strategy)
class RowState(enum.StrEnum):
    """What ``status`` calls one strategy of one user: its user's state, refined."""

    PENDING = "PENDING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    DONE = "DONE"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FATAL = "FATAL"
    SKIPPED = "SKIPPED"
    QUEUED = "QUEUED"  # waiting its turn in its user's running process


# the supervisor's own phase (``alphavol status``'s first line)
SupervisorPhase = Literal["starting", "running", "waiting_next_day", "stopping"]

# what an ``ErrorReport`` is about: an exit status's name in lower case (the process ends
# with it), a round trip's outcome that placed nothing, or a trouble the process rides out
ErrorKind = Literal[
    # exit statuses (``protocol.exitcodes.Exit``)
    "ok",
    "crash",
    "session_expired",
    "risk_challenge",
    "bad_config",
    "leftover",
    "cost_cap",
    "exchange_down",
    "supervisor_lost",
    "insufficient_balance",
    "bad_reply",
    "low_balance",
    "proxy_refused",
    # round trips that placed or filled nothing
    "not_placed",
    "rejected",
    "stopped",
    "balance_wait",
    "no_fill",
    "order_rejected",
    # troubles ridden out, or one strategy's end
    "rate_limited",
    "bad_setup",
]

__all__ = ["ErrorKind", "RowPhase", "RowState", "SupervisorPhase", "UserPhase", "VolumeBasis"]
