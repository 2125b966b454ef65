"""The state machine of one user process (supervisord style): every edge is named here.

One process runs per user (its strategies one after another); its state is the user's
state. A transition that is not listed in ``EDGES`` is a bug and raises, so a reader can
see every way a user can move in one table. Every transition is logged and kept in the
record's history for ``alphavol status``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import structlog

from protocol.vocab import RowState, SupervisorPhase

log = structlog.get_logger(__name__)


class State(enum.StrEnum):
    PENDING = "PENDING"  # waiting for a free slot (or its volume check)
    STARTING = "STARTING"  # forked, no Hello yet
    RUNNING = "RUNNING"  # said Hello, trading
    BACKOFF = "BACKOFF"  # crashed, waiting for its restart delay
    DONE = "DONE"  # reached every target today
    STOPPING = "STOPPING"  # told to Drain/StopNow, not exited yet
    STOPPED = "STOPPED"  # stopped on request, or by its daily cost cap
    FATAL = "FATAL"  # will not be restarted today (reason says why)
    SKIPPED = "SKIPPED"  # already at target when checked


# What the supervisor as a whole is doing (``status``'s phase).
Phase = SupervisorPhase  # the supervisor's (protocol.vocab: the same strings on the wire)


ROW_ALIVE = frozenset({RowState.STARTING, RowState.RUNNING, RowState.STOPPING})


TERMINAL = frozenset({State.DONE, State.STOPPED, State.FATAL, State.SKIPPED})
ALIVE = frozenset({State.STARTING, State.RUNNING, State.STOPPING})

# (from, to) -> the name of the edge, as it appears in logs and history.
EDGES: dict[tuple[State, State], str] = {
    (State.PENDING, State.STARTING): "spawn",
    (State.PENDING, State.SKIPPED): "at_target",
    (State.PENDING, State.FATAL): "check_failed",
    (State.PENDING, State.STOPPED): "stop_before_start",
    (State.STARTING, State.RUNNING): "hello",
    (State.STARTING, State.DONE): "exited_done",
    (State.STARTING, State.BACKOFF): "crashed",
    (State.STARTING, State.FATAL): "exited_fatal",
    (State.STARTING, State.STOPPED): "exited_stopped",
    (State.STARTING, State.STOPPING): "stop",
    (State.RUNNING, State.DONE): "exited_done",
    (State.RUNNING, State.BACKOFF): "crashed",
    (State.RUNNING, State.FATAL): "exited_fatal",
    (State.RUNNING, State.STOPPED): "exited_stopped",
    (State.RUNNING, State.STOPPING): "stop",
    (State.BACKOFF, State.STARTING): "respawn",
    (State.BACKOFF, State.STOPPED): "stop_in_backoff",
    (State.BACKOFF, State.FATAL): "spawn_failed",
    (State.STOPPING, State.STOPPED): "exited_stopped",
    (State.STOPPING, State.DONE): "exited_done",
    (State.STOPPING, State.FATAL): "exited_fatal",
    (State.STOPPING, State.STOPPING): "stop_harder",
    (State.PENDING, State.PENDING): "requeue",
    # operator `start`, reload, or a new UTC day put a finished user back in the queue
    (State.DONE, State.PENDING): "requeue",
    (State.STOPPED, State.PENDING): "requeue",
    (State.FATAL, State.PENDING): "requeue",
    (State.SKIPPED, State.PENDING): "requeue",
}


# How loud a transition is logged: FATAL needs the operator (session expired, risk
# challenge, insufficient balance, leftovers, too many crashes), a crash is worth a look.
LOG_LEVEL = {State.FATAL: "error", State.BACKOFF: "warning"}


class IllegalTransition(RuntimeError):
    pass


@dataclass(frozen=True)
class Transition:
    at: float
    src: State
    dst: State
    edge: str
    reason: str | None


@dataclass
class StateMachine:
    """The state of one user, with its history."""

    user_id: str
    state: State = State.PENDING
    reason: str | None = None
    history: list[Transition] = field(default_factory=list)

    def can(self, dst: State) -> bool:
        return (self.state, dst) in EDGES

    def to(
        self, dst: State, *, at: float, reason: str | None = None, cause: str | None = None
    ) -> Transition:
        """Move to ``dst`` (an edge of ``EDGES``) for ``reason``; ``cause``: what led to it,
        logged with it (the exit that ended a process while the supervisor stops)."""
        edge = EDGES.get((self.state, dst))
        if edge is None:
            raise IllegalTransition(f"user {self.user_id}: {self.state} -> {dst} is not an edge")
        t = Transition(at=at, src=self.state, dst=dst, edge=edge, reason=reason)
        self.history.append(t)
        del self.history[:-50]  # bounded: status shows the recent ones
        fields = {"reason": reason} if reason is not None else {}
        if cause is not None:
            fields["cause"] = cause
        getattr(log, LOG_LEVEL.get(dst, "info"))(
            "user_state_changed",
            user_id=self.user_id,
            src=str(t.src),
            dst=str(t.dst),
            edge=edge,
            **fields,
        )
        self.state = dst
        self.reason = reason
        return t

    def explain(self, reason: str) -> None:
        """A new reason for the state it is in, without a move (the fork returned: the
        process's pid)."""
        self.reason = reason
