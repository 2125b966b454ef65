"""How a trade ended, as data: the ``Outcome`` of a journal row (and of a round trip), the
one table from a POST's exception to what the journal says of it, and the risk challenge
that carries what its adopted round trip left unsold.

The journal stores an outcome as its string value (``Outcome`` is a ``StrEnum``: the
strings in existing journals read as before, and compare equal to the enum).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from exchange.errors import (
    OrderRejected,
    ProxyLoginRefused,
    RateLimited,
    RiskChallenge,
    SessionExpired,
    TransportError,
)
from protocol.vocab import ErrorKind
from userproc.errors import LeftoverError


class Outcome(StrEnum):
    """A trade's end. Journal rows get every value but the last two; a round trip's
    ``TradeResult`` gets ``DONE``, ``NO_FILL``, ``NOT_PLACED``, ``REJECTED``, ``STOPPED``
    or ``BALANCE_WAIT``."""

    DONE = "done"  # a round trip whose buy filled (at least partly), sold or dust
    NO_FILL = "no_fill"  # placed, nothing filled (cancelled after the timeout); a sell too
    LEFTOVER = "leftover"  # tokens bought that could not be sold: the user pauses
    SOLD = "sold"  # a plain leftover sell that filled
    SWEPT = "swept"  # a dust sweep
    NOT_PLACED = "not_placed"  # the POST's outcome was unknown; looked up, not found
    REJECTED = "rejected"  # the exchange refused the order
    REFUSED = "refused"  # not placed: the exchange shut the user out (session, proxy, risk)
    RATE_LIMITED = "rate_limited"  # an OTO refused before it was processed (HTTP 429/418)
    NOT_SENT = "not_sent"  # the request never left (or a sell was rate limited)
    STOPPED = "stopped"  # a round trip not started: stop requested (never in the journal)
    BALANCE_WAIT = "balance_wait"  # refused for balance another strategy holds (ditto)


# what the supervisor is told of a round trip that placed nothing (``ErrorReport.kind``)
ERROR_KIND: dict[Outcome, ErrorKind] = {
    Outcome.NOT_PLACED: "not_placed",
    Outcome.REJECTED: "rejected",
    Outcome.NO_FILL: "no_fill",
    Outcome.STOPPED: "stopped",
    Outcome.BALANCE_WAIT: "balance_wait",
}


def _text(exc: Exception) -> str:
    return str(exc)


def _name(exc: Exception) -> str:
    return type(exc).__name__


@dataclass(frozen=True)
class NotPlaced:
    """What the journal says of an order whose POST raised one of ``errors``: nothing was
    placed. ``fatal``: the user stops (the exception goes on once the journal has it)."""

    errors: tuple[type[Exception], ...]
    oto: Outcome  # for a round trip's OTO
    sell: Outcome  # for a plain (leftover or dust) sell
    note: Callable[[Exception], str]  # the row's note (redacted by the journal)
    fatal: bool = False

    def outcome(self, kind: str) -> Outcome:
        return self.oto if kind == "oto" else self.sell


# The one table, the first match wins (ProxyLoginRefused is a TransportError). A POST
# whose outcome is unknown (``OutcomeUnknown``) is not in it: that order is looked up.
NOT_PLACED: tuple[NotPlaced, ...] = (
    NotPlaced(
        (SessionExpired, ProxyLoginRefused, RiskChallenge),
        Outcome.REFUSED,
        Outcome.REFUSED,
        _name,
        fatal=True,
    ),
    NotPlaced((OrderRejected,), Outcome.REJECTED, Outcome.REJECTED, _text),
    NotPlaced((RateLimited,), Outcome.RATE_LIMITED, Outcome.NOT_SENT, _text),
    NotPlaced((TransportError,), Outcome.NOT_SENT, Outcome.NOT_SENT, _text),
)
REFUSALS: tuple[type[Exception], ...] = tuple(e for row in NOT_PLACED for e in row.errors)


def not_placed(exc: Exception) -> NotPlaced:
    """The table's row for ``exc`` (one of ``REFUSALS``)."""
    for row in NOT_PLACED:
        if isinstance(exc, row.errors):
            return row
    raise ValueError(f"not a refusal: {type(exc).__name__}")


class ChallengedWithLeftover(RiskChallenge):
    """A risk challenge on a reply that placed the order: its round trip was finished
    before the user stops and left tokens it could not sell (``leftover``). The challenge
    stays the reason the user stops."""

    def __init__(self, challenge: RiskChallenge, leftover: LeftoverError) -> None:
        super().__init__(
            challenge.message,
            code=challenge.code,
            http_status=challenge.http_status,
            endpoint=challenge.endpoint,
        )
        self.placed = challenge.placed
        self.may_exist = challenge.may_exist
        self.leftover = leftover
