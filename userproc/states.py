"""The user process's phases as an explicit state machine (as supervisord's states.py).

Every phase change goes through ``PhaseMachine.to`` which refuses edges that are not
listed in ``EDGES``: a reader finds the whole life of the process here, and a bug that
would, say, start TRADING while DRAINING fails loudly instead of placing an order.
Each change is logged and handed to a callback (the supervisor link) as ``PhaseChanged``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


class Phase(enum.StrEnum):
    STARTING = "starting"  # connecting link, client, stream
    RECONCILING = "reconciling"  # finishing journal trades left by an earlier run
    CHECKING = "checking"  # reading today's volume, planning
    TRADING = "trading"  # a round trip is in progress
    INTERVAL = "interval"  # waiting trade_interval_seconds between round trips
    SETTLING = "settling"  # waiting for the exchange's volume figure to catch up
    WAITING_PRICE = "waiting_price"  # volatility guard: price moved too much, not buying
    WAITING_STREAM = "waiting_stream"  # user stream down: no new order until it is back
    DRAINING = "draining"  # finishing the round trip in progress, then exit
    STOPPING = "stopping"  # cancelling open orders, selling leftovers
    PAUSED = "paused"  # tokens could not be sold: buying nothing more
    DONE = "done"  # exited (any reason)


_ACTIVE = {
    Phase.CHECKING,
    Phase.TRADING,
    Phase.INTERVAL,
    Phase.SETTLING,
    Phase.WAITING_PRICE,
    Phase.WAITING_STREAM,
}

EDGES: dict[Phase, set[Phase]] = {
    Phase.STARTING: {Phase.RECONCILING, Phase.STOPPING, Phase.DONE},
    Phase.RECONCILING: {Phase.CHECKING, Phase.STOPPING, Phase.PAUSED, Phase.DONE},
    Phase.CHECKING: _ACTIVE | {Phase.DRAINING, Phase.STOPPING, Phase.PAUSED, Phase.DONE},
    Phase.TRADING: _ACTIVE | {Phase.DRAINING, Phase.STOPPING, Phase.PAUSED, Phase.DONE},
    Phase.INTERVAL: _ACTIVE | {Phase.DRAINING, Phase.STOPPING, Phase.PAUSED, Phase.DONE},
    Phase.SETTLING: _ACTIVE | {Phase.DRAINING, Phase.STOPPING, Phase.PAUSED, Phase.DONE},
    Phase.WAITING_PRICE: _ACTIVE | {Phase.DRAINING, Phase.STOPPING, Phase.PAUSED, Phase.DONE},
    Phase.WAITING_STREAM: _ACTIVE | {Phase.DRAINING, Phase.STOPPING, Phase.PAUSED, Phase.DONE},
    Phase.DRAINING: {Phase.STOPPING, Phase.PAUSED, Phase.DONE},
    Phase.STOPPING: {Phase.PAUSED, Phase.DONE},
    Phase.PAUSED: {Phase.DONE},
    Phase.DONE: set(),
}


class IllegalTransition(RuntimeError):
    pass


class PhaseMachine:
    """Holds the current phase; ``to`` validates, logs and reports every change."""

    def __init__(
        self, on_change: Callable[[Phase, str | None, str | None], None] | None = None
    ) -> None:
        self.phase = Phase.STARTING
        self.strategy_id: str | None = None
        self._on_change = on_change

    def can(self, new: Phase) -> bool:
        return new == self.phase or new in EDGES[self.phase]

    def to(self, new: Phase, reason: str | None = None) -> None:
        if new == self.phase:
            return
        if self.phase in (Phase.DRAINING, Phase.STOPPING, Phase.PAUSED) and new in _ACTIVE:
            return  # once draining/stopping, the work still finishing is not a new phase
        if new not in EDGES[self.phase]:
            raise IllegalTransition(f"{self.phase.value} -> {new.value} is not an allowed edge")
        old, self.phase = self.phase, new
        log.info(
            "phase_changed",
            old=old.value,
            new=new.value,
            strategy_id=self.strategy_id,
            reason=reason,
        )
        if self._on_change is not None:
            self._on_change(new, self.strategy_id, reason)

    @property
    def stopping(self) -> bool:
        return self.phase in (Phase.DRAINING, Phase.STOPPING, Phase.PAUSED, Phase.DONE)
