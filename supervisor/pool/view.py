"""``alphavol status`` from any node of a pool (issue 22): every user of the pool with the
node that runs it, and every node with how long ago it last heartbeat.

Each node writes its users' status rows into the store with every heartbeat; a node's
reply merges its own rows (fresh) with the others' (as of their last heartbeat). A user
shown by several nodes (one ran it earlier today) is shown once: by the node whose
process is alive, else by this node, else by the one that heartbeat last. A user no node
shows is PENDING with no node: waiting for a node with room.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from protocol import messages as m
from supervisor.reload_plan import settings_by_user
from supervisor.states import ROW_ALIVE, RowState

if TYPE_CHECKING:
    from supervisor.pool.node import Pool

Best = dict[tuple[str, str], tuple[int, m.UserStatus]]  # (strategy, user) -> (rank, row)


def pool_view(pool: Pool, reply: m.StatusReply) -> m.StatusReply:
    reply.node = pool.node
    reply.store = f"unreachable ({pool.problem})" if pool.problem else "reachable"
    best: Best = {}
    for st in reply.strategies:
        for u in st.users:
            u.node = pool.node
            best[(u.strategy_id, u.user_id)] = (_rank(u, local=True), u)
    # in order of heartbeat age: our own line counts the rows still ours at that point
    nodes = [_node(pool, *seen, best) for seen in sorted(pool.seen, key=lambda n: n[1])]
    _add_waiting(pool, best)
    _regroup(reply, best)
    reply.nodes = sorted(nodes, key=lambda n: n.node)
    return reply


def _node(
    pool: Pool, name: str, age: float, alive: bool, rows: list[Any], best: Best
) -> m.NodeStatus:
    """One node's line; the rows it wrote that beat what ``best`` holds go in."""
    running = 0
    for doc in rows if name != pool.node else []:
        u = _decode(doc)
        if u is None:
            continue
        u.node = name
        running += u.state in ROW_ALIVE and alive
        key = (u.strategy_id, u.user_id)
        rank = _rank(u, local=False) if alive else 0
        if key not in best or rank > best[key][0]:
            best[key] = (rank, u)
    if name == pool.node:
        running = sum(1 for _, u in best.values() if u.node == name and u.state in ROW_ALIVE)
    return m.NodeStatus(node=name, alive=alive, heartbeat_age_seconds=round(age, 1), users=running)


def _add_waiting(pool: Pool, best: Best) -> None:
    """A user of the config no node shows: PENDING with no node."""
    for uid, settings in settings_by_user(pool.arb.config).items():
        for s in settings:
            if (s.strategy_id, uid) not in best:
                waiting = m.UserStatus(
                    user_id=uid, strategy_id=s.strategy_id, state=RowState.PENDING,
                    target_volume=s.target_volume,
                )  # fmt: skip
                best[(s.strategy_id, uid)] = (0, waiting)


def _regroup(reply: m.StatusReply, best: Best) -> None:
    """The chosen rows under their strategies, users in numeric order."""
    by_strategy = {st.strategy_id: st for st in reply.strategies}
    for st in reply.strategies:
        st.users = []
    for (sid, _uid), (_, u) in best.items():
        if sid in by_strategy:
            by_strategy[sid].users.append(u)
    for st in reply.strategies:
        st.users.sort(key=lambda u: (not u.user_id.isdigit(), u.user_id.zfill(20)))


def _rank(u: m.UserStatus, *, local: bool) -> int:
    """Which row of a user to show: a live process's, then ours, then another's."""
    return 3 if u.state in ROW_ALIVE else (2 if local else 1)


def _decode(doc: Any) -> m.UserStatus | None:
    try:
        return msgspec.convert(doc, m.UserStatus)
    except msgspec.ValidationError:
        return None
