"""``StatusRequest`` -> ``StatusReply``.

The supervisor's pid, start time, the UTC day being worked, its phase (starting, running,
waiting_next_day, stopping), the next daily run, and per strategy (in config order) one
``UserStatus`` per user: state, pid, restarts, volumes, batch i/N, cost, last error, ETA.
Built from memory (the day's figures: what ``supervisor.books_today`` read from the books,
once its reading covers every change noted before the request).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from protocol import messages as m
from supervisor.commands.base import Command

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter


class Status(Command[m.StatusRequest]):
    name = "status"
    request = m.StatusRequest

    async def execute(self, arbiter: Arbiter, req: m.StatusRequest) -> m.Reply:
        await arbiter.observer.today.current()  # the figures of every change noted so far
        return status_reply(arbiter)


def status_reply(arbiter: Arbiter) -> m.StatusReply:
    """What ``status`` shows, from memory only (the metrics read the same rows)."""
    now = arbiter.mono()
    strategies: dict[str, m.StrategyStatus] = {}
    for info in arbiter.config.strategies:
        strategies[info.strategy_id] = m.StrategyStatus(
            strategy_id=info.strategy_id,
            strategy_name=info.strategy_name,
            token=info.target_token,
            enabled=info.enabled,
            selected=arbiter.config.selected(info.strategy_id)
            if hasattr(arbiter.config, "selected")
            else True,
            target_volume=getattr(info, "target_volume", None) or Decimal(0),
            users=[],
        )
    for rec in arbiter.records.values():
        for row in rec.rows.values():
            s = row.settings
            st = strategies.get(s.strategy_id)
            if st is None:
                st = strategies[s.strategy_id] = m.StrategyStatus(
                    strategy_id=s.strategy_id,
                    strategy_name=s.strategy_name,
                    token=s.target_token,
                    target_volume=s.target_volume,
                    users=[],
                )
            if not st.target_volume:
                st.target_volume = s.target_volume
            u = arbiter.observer.today.status(rec, row, now=now)
            u.session_stored_at = arbiter.sessions.stored_at.get(rec.user_id)
            st.users.append(u)
    if arbiter.pool is not None:  # every user of the pool, from any node (issue 22)
        return arbiter.pool.status_reply(_reply(arbiter, strategies))
    return _reply(arbiter, strategies)


def _reply(arbiter: Arbiter, strategies: dict[str, m.StrategyStatus]) -> m.StatusReply:
    return m.StatusReply(
        pid=arbiter.pid,
        started_at=arbiter.started_at,
        day=arbiter.day,
        phase=arbiter.phase,
        next_run_at=arbiter.next_run_at,
        strategies=list(strategies.values()),
    )
