"""The leases this node holds, judged by its own monotonic clock (issue 22, fencing).

A lease the database renewed at a tick that began at monotonic time ``t`` is valid at
least until ``t + lease_seconds`` (the database's ``now()`` was no earlier than ``t``):
so the node can judge its leases without trusting its wall clock. It starts a user only
while the lease is valid beyond the next renewal, stops its users at once (cancel, sell)
when it could not renew for half a lease, and kills what is still running shortly before
the lease can have expired. Every Ping carries ``trade_until``: a user process whose
supervisor stalls stops by itself before the lease can expire.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Leases:
    lease: float  # seconds
    renew_every: float  # seconds between ticks
    held: dict[str, int] = field(default_factory=dict)  # user_id -> epoch
    fenced: dict[str, int] = field(default_factory=dict)  # dropped unrenewed; to release
    renewed_at: float | None = None  # monotonic start of the last accepted renewal

    def age(self, mono: float) -> float:
        return float("inf") if self.renewed_at is None else mono - self.renewed_at

    def may_start(self, user_id: str, mono: float) -> bool:
        """Held, and valid for longer than the next renewal plus the fencing margin."""
        return user_id in self.held and self.age(mono) + self.renew_every < self.lease / 2

    def must_stop(self, mono: float) -> bool:
        """Half a lease without a renewal: stop every user now."""
        return bool(self.held) and self.age(mono) >= self.lease / 2

    def must_kill(self, mono: float) -> bool:
        """What still runs must be gone before the lease can have expired."""
        return self.age(mono) >= self.lease * 0.85

    def trade_until(self) -> float:
        """The monotonic time past which a user process stops by itself: after the node's
        own stop (half a lease), before its kill (0.85) and the lease's expiry."""
        return -1.0 if self.renewed_at is None else self.renewed_at + self.lease * 0.75

    def fence(self) -> dict[str, int]:
        """Give up (locally) every lease held; they are released once reachable again."""
        dropped, self.held = self.held, {}
        self.fenced.update(dropped)
        return dropped
