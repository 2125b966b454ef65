"""What the supervisor hands to a user process when it forks it.

Passed as the child's argument (pickled over the fork server's private pipe), never on a
command line or in the environment, and holding only this user's own credentials.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from config.settings import EffectiveSettings, ExchangeSettings, LoggingSettings
from exchange.auth import Credentials
from protocol.messages import SpentElsewhere
from userproc.tuning import DEFAULT_TUNING, Tuning


class CopiedElsewhere(msgspec.Struct, frozen=True, kw_only=True):
    """On a node of a pool: the buys' order ids of the round trips of this user that the
    other nodes copied into the shared books on ``day``, as read before the fork. A round
    trip of today that the exchange shows, that this journal does not know and that is
    not among these was finished by a node that died (or handed the user over) before
    copying it: the process records it (``recovery.adopt_orphans``)."""

    day: str
    order_ids: frozenset[str]


class UserSpec(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    settings: list[EffectiveSettings]  # this user's strategies
    credentials: Credentials
    exchange: ExchangeSettings
    journal_path: str  # SQLite journal of this user (inside data_dir)
    events_endpoint: str  # supervisor's ROUTER (protocol.addresses.events_endpoint)
    logging: LoggingSettings = LoggingSettings()
    restarts: int = 0  # how many times the supervisor restarted this user today
    tuning: Tuning = DEFAULT_TUNING  # process knobs (defaults in production; tests shrink them)
    # run this user's strategies side by side (one round-trip loop each) instead of one
    # after another; they share the process's stream, journal and balance
    parallel_strategies: bool = False
    # today's volume per strategy (in its basis) as the supervisor read it just before the
    # fork, and when (epoch seconds): the first check uses it instead of asking again
    known_volumes: dict[str, Decimal] = {}
    known_volumes_at: float = 0.0
    # a node of a pool: the user's cost today on the other nodes, as the supervisor read
    # the shared books before the fork (later Pings bring newer readings)
    spent_elsewhere: SpentElsewhere | None = None
    copied_elsewhere: CopiedElsewhere | None = None  # a pool, its books read: see the class

    def __repr__(self) -> str:  # credentials stay out of any repr
        ids = [s.strategy_id for s in self.settings]
        return f"UserSpec(user_id={self.user_id!r}, strategies={ids!r})"
