"""Turning a ``StatusReply`` into what ``alphavol status`` prints (text and JSON).

The JSON keeps the seed's per-strategy fields (``strategy_id``, ``strategy_name``,
``is_running``, ``target_volume``, ``total_volume``, ``progress``, ``user_volumes``) so
scripts written for the original tool keep working, and adds everything else.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from protocol import messages as m
from supervisor.states import ROW_ALIVE, RowState

ETA_STATES = {RowState.STARTING, RowState.RUNNING, RowState.BACKOFF, RowState.PENDING}
RUNNING_STATES = ETA_STATES | {RowState.STOPPING}
WHY_STATES = {RowState.FATAL, RowState.BACKOFF, RowState.STOPPED, RowState.STOPPING}


def _ts(ts: float | None, form: str = "%Y-%m-%d %H:%M:%S") -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).strftime(f"{form} UTC")


def money(d: Decimal | str) -> str:
    """Costs to the hundredth of a cent, for people (JSON keeps the exact figure)."""
    return f"{Decimal(d).quantize(Decimal('0.0001')):f}"


def volume(d: Decimal | None) -> str:
    """A volume for people: thousands separated, two decimals; ``?`` when unknown."""
    if d is None:
        return "?"
    return f"{d.quantize(Decimal('0.01')):,f}"


def target(d: Decimal) -> str:
    """A target as written: no decimals when it has none."""
    return f"{d:,f}" if d != d.to_integral_value() else f"{d.to_integral_value():,f}"


def eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    sec = int(seconds)
    if sec >= 3600:
        return f"{sec // 3600}h{sec % 3600 // 60:02d}m"
    return f"{sec // 60}m{sec % 60:02d}s"


def age(at: float | None, now: float | None = None) -> str:
    """How long ago a volume was read: ``5s``, ``3m``, ``2h``; ``-`` when never."""
    if at is None:
        return "-"
    sec = max(0, int((time.time() if now is None else now) - at))
    if sec < 60:
        return f"{sec}s"
    return f"{sec // 60}m" if sec < 3600 else f"{sec // 3600}h"


def unconfirmed(u: m.UserStatus) -> str:
    """``+27.3``: what the trades since the last read should add (not yet the exchange's
    figure); empty when nothing was traded since."""
    if not u.unconfirmed_volume:
        return ""
    return f"+{u.unconfirmed_volume.quantize(Decimal('0.1')):,f}"


def with_unconfirmed(u: m.UserStatus) -> Decimal | None:
    """The volume read plus what was traded since: what progress is measured with."""
    if u.current_volume is None:
        return None
    return u.current_volume + (u.unconfirmed_volume or Decimal(0))


def shows_eta(u: m.UserStatus) -> bool:
    """Only a user that is working (or about to) has an ETA; a stopped or finished one not."""
    return u.state in ETA_STATES


def batch(u: m.UserStatus) -> str:
    """``3/10``: trade 3 of the 10 planned in the current batch (not the day's total,
    which is ``trades``)."""
    return f"{u.trade_index}/{u.loops}" if u.batch else "-"


def strategy_totals(st: m.StrategyStatus) -> dict[str, Any]:
    """The seed's fields: ``total_volume`` is the exchange's figure as last read;
    ``unconfirmed_volume`` what the trades since should add; ``progress`` counts both."""
    total = sum((u.current_volume or Decimal(0) for u in st.users), Decimal(0))
    extra = sum((u.unconfirmed_volume or Decimal(0) for u in st.users), Decimal(0))
    target = sum((u.target_volume for u in st.users), Decimal(0))
    done = total + extra
    return {
        "strategy_id": st.strategy_id,
        "strategy_name": st.strategy_name,
        "is_running": any(u.state in RUNNING_STATES for u in st.users),
        "target_volume": str(target),
        "total_volume": str(total),
        "unconfirmed_volume": str(extra),
        "progress": float(min(Decimal(1), done / target)) * 100 if target > 0 else 0.0,
        "user_volumes": {u.user_id: str(u.current_volume or 0) for u in st.users},
        "cost_today": str(sum((u.cost_today for u in st.users), Decimal(0))),
    }


def to_json(reply: m.StatusReply) -> dict[str, Any]:
    return {
        "supervisor": {
            "pid": reply.pid,
            "started_at": reply.started_at,
            "day": reply.day,
            "phase": reply.phase,
            "next_run_at": reply.next_run_at,
            "next_run": _ts(reply.next_run_at),
        },
        "strategies": [
            {
                **strategy_totals(st),
                "token": st.token,
                "enabled": st.enabled,
                "selected": st.selected,
                "users": [_user_json(u) for u in st.users],
            }
            for st in reply.strategies
        ],
        **_pool_json(reply),
    }


def _pool_json(reply: m.StatusReply) -> dict[str, Any]:
    if reply.node is None:
        return {}
    nodes = [msgspec.to_builtins(n) for n in reply.nodes]
    return {"pool": {"node": reply.node, "store": reply.store, "nodes": nodes}}


def _user_json(u: m.UserStatus) -> dict[str, Any]:
    doc = msgspec.to_builtins(u)
    if not shows_eta(u):
        doc.pop("eta_seconds", None)
    if u.volume_at is not None:  # the volume is what was read then, not an estimate
        doc["volume_age_seconds"] = round(max(0.0, time.time() - u.volume_at), 1)
    if u.session_stored_at is not None:  # the exchange's "stay signed in" lasts ~5 days
        doc["session_age_seconds"] = round(max(0.0, time.time() - u.session_stored_at), 1)
    return doc


def pool_lines(reply: m.StatusReply) -> list[str]:
    """A pool's nodes (issue 22): which run, which stopped heartbeating."""
    if reply.node is None:
        return []
    lines = ["", f"pool: this node {reply.node}, store {reply.store}"]
    for n in reply.nodes:
        how = (
            f"{n.users} users running"
            if n.alive
            else f"NO HEARTBEAT for {n.heartbeat_age_seconds:g} s"
        )
        lines.append(f"  node {n.node}: {how}")
    return lines


def headline(reply: m.StatusReply) -> str:
    """``supervisor pid 25158, 2026-12-06 waiting_next_day; next run 2026-12-07 00:05 UTC``:
    within 80 columns."""
    return f"supervisor pid {reply.pid}, {reply.day} {reply.phase}" + (
        f"; next run {_ts(reply.next_run_at, '%Y-%m-%d %H:%M')}" if reply.next_run_at else ""
    )


def strategy_line(st: m.StrategyStatus) -> str:
    """One line per strategy: its name, token and the day's cost; a strategy that is not
    traded says so here and gets no table."""
    t = strategy_totals(st)
    name = "" if st.strategy_name == st.strategy_id else f" ({st.strategy_name})"
    if not st.selected:
        return f"{st.strategy_id}{name} {st.token}: not selected (run --strategy), not traded"
    if not st.enabled and not is_traded(st):
        return f"{st.strategy_id}{name} {st.token}: disabled, not traded"
    users = f"{len(st.users)} user{'s' if len(st.users) != 1 else ''}"
    return (
        f"{st.strategy_id}{name} {st.token}{'' if st.enabled else ' [disabled]'}:"
        f" {users}, cost {money(t['cost_today'])} USDT today"
    )


def is_traded(st: m.StrategyStatus) -> bool:
    """Has a table: selected, and enabled or still worked on by a user process."""
    return st.selected and (st.enabled or any(u.state in ROW_ALIVE for u in st.users))


def user_notes(u: m.UserStatus) -> list[str]:
    """What a table row has no room for: why a user stopped, its last error, leftovers."""
    notes = []
    if u.token and u.cost_per_credit is not None:  # target_token auto
        mul = f" x{u.mul_point.normalize():f}" if u.mul_point else ""
        notes.append(
            f"token: {u.token}{mul}, expected {u.cost_per_credit * 10000:.3f} bp per credited USDT"
        )
    if u.reason and u.state in WHY_STATES:
        notes.append(f"why: {u.reason}")
    if u.last_error and u.last_error != u.reason:
        notes.append(f"last error: {u.last_error}")
    if u.restarts:
        notes.append(f"restarts: {u.restarts}")
    notes.extend(f"leftover {left.quantity} {left.token}" for left in u.leftovers)
    return notes


def to_text(reply: m.StatusReply, width: int = 80) -> str:
    """The status as ``alphavol status`` prints it (rich tables rendered to text)."""
    from supervisor.tables import render_text, status_view

    return render_text(status_view(reply), width=width)


def print_text(reply: m.StatusReply) -> None:
    from config.output import show
    from supervisor.tables import status_view

    show(status_view(reply))


def print_json(reply: m.StatusReply) -> None:
    from config.output import say_json

    say_json(to_json(reply))
