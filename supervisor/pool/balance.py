"""How many users one node of the pool should hold (issue 22, "Balance").

Every node computes the same figure from the same two counts (users with work today,
nodes heartbeating): the even share, rounded up, and never above the node's capacity.
A node below it claims free users; a node above it hands the excess over at batch
boundaries (drain, release, another claims). With every node at or below the rounded-up
share, none holds more than one user above an even share.
"""

from __future__ import annotations

import math


def share(active_users: int, live_nodes: int, capacity: int) -> int:
    """Users this node should hold: ceil(active / nodes), at most ``capacity``."""
    return min(capacity, math.ceil(active_users / max(1, live_nodes)))


def to_claim(held: int, active_users: int, live_nodes: int, capacity: int) -> int:
    return max(0, share(active_users, live_nodes, capacity) - held)


def to_hand_over(held: int, active_users: int, live_nodes: int, capacity: int) -> int:
    return max(0, held - share(active_users, live_nodes, capacity))
