"""The pool's share rule (issue 22): every node between floor and ceil of an even share,
whatever the counts the nodes start from."""

from __future__ import annotations

import itertools

from supervisor.pool.balance import to_claim, to_hand_over


def settle(held: dict[str, int], users: int, capacity: int = 100) -> dict[str, int]:
    """Run the rule as the nodes would, one tick each in turn, until nothing moves."""
    free = users - sum(held.values())
    for _ in range(100):
        moved = False
        for node in sorted(held):
            out = to_hand_over(node, held, users, capacity)
            held[node] -= out
            free += out
            take = min(free, to_claim(node, held, users, capacity))
            held[node] += take
            free -= take
            moved |= bool(out or take)
        if not moved:
            return held
    raise AssertionError(f"no rest: {held}")


def test_every_start_ends_within_one_user_of_an_even_share():
    for users, nodes in itertools.product(range(0, 13), range(1, 5)):
        for first in range(0, users + 1):  # one node took `first` before the others came
            held = {f"n{i}": 0 for i in range(nodes)}
            held["n0"] = first
            end = settle(held, users)
            assert sum(end.values()) == users, (users, nodes, first, end)
            even = users / nodes
            assert all(h <= even + 1 for h in end.values()), (users, nodes, first, end)
            assert max(end.values()) - min(end.values()) <= 1, (users, nodes, first, end)


def test_a_fourth_node_gets_a_share_of_six_users():
    end = settle({"a": 2, "b": 2, "c": 2, "d": 0}, 6)
    assert sorted(end.values()) == [1, 1, 2, 2] and end["d"] >= 1


def test_capacity_caps_the_share():
    assert to_claim("a", {"a": 0}, 10, capacity=3) == 3
    assert to_hand_over("a", {"a": 5}, 10, capacity=3) == 2
