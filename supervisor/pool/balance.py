"""How many users one node of the pool should hold (issue 22, "Balance").

Every node computes the same answer from the same counts, taken in its tick's
transaction: the users with work today and, per node heartbeating, the leases it holds.
With ``even = users / nodes``, a node claims free users up to ``ceil(even)`` (never above
its capacity; only up to ``floor(even)`` while another node is below that); a node above ``ceil(even)`` hands the excess over; and while some node
holds fewer than ``floor(even)``, as many of the fullest nodes (ties by name) as there
are missing users hand one over each. Handing over is a drain at the end of the round
trip, then a release another node claims; a node drains one user at a time. The pool
ends with every node between ``floor(even)`` and ``ceil(even)``: none more than one
user above an even share.
"""

from __future__ import annotations

import math


def bounds(active_users: int, live_nodes: int, capacity: int) -> tuple[int, int]:
    even = active_users / max(1, live_nodes)
    return min(capacity, math.floor(even)), min(capacity, math.ceil(even))


def to_claim(me: str, held_by: dict[str, int], active_users: int, capacity: int) -> int:
    """Free users ``me`` should claim now: up to ``ceil(even)``, but only up to
    ``floor(even)`` while another node is below it (what a node hands over goes to the
    node short of its share, not back to the node that gave it up)."""
    lo, hi = bounds(active_users, len(held_by), capacity)
    short = sum(max(0, lo - h) for n, h in held_by.items() if n != me)
    return max(0, (lo if short else hi) - held_by.get(me, 0))


def to_hand_over(me: str, held_by: dict[str, int], active_users: int, capacity: int) -> int:
    """Users ``me`` should hand over now; ``held_by``: every live node's leases."""
    lo, hi = bounds(active_users, len(held_by), capacity)
    mine = held_by.get(me, 0)
    if mine > hi:
        return mine - hi
    deficit = sum(max(0, lo - h) for h in held_by.values())
    if not deficit or mine <= lo:
        return 0
    donors = sorted((n for n, h in held_by.items() if h > lo), key=lambda n: (-held_by[n], n))
    return 1 if me in donors[:deficit] else 0
