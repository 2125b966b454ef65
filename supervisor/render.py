"""Turning a ``StatusReply`` into what ``alphavol status`` prints (text and JSON).

The JSON keeps the seed's per-strategy fields (``strategy_id``, ``strategy_name``,
``is_running``, ``target_volume``, ``total_volume``, ``progress``, ``user_volumes``) so
scripts written for the original tool keep working, and adds everything else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from protocol import messages as m

RUNNING_STATES = {"STARTING", "RUNNING", "STOPPING", "BACKOFF", "PENDING"}


def _ts(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(d: Decimal | None) -> str:
    if d is None:
        return "?"
    return f"{d.quantize(Decimal('0.01')):f}"


def money(d: Decimal | str) -> str:
    """Costs to the hundredth of a cent, for people (JSON keeps the exact figure)."""
    return f"{Decimal(d).quantize(Decimal('0.0001')):f}"


def bar(cur: Decimal | None, target: Decimal, width: int = 20) -> str:
    if cur is None or target <= 0:
        return "[" + "?" * width + "]"
    frac = min(Decimal(1), max(Decimal(0), cur / target))
    full = int(frac * width)
    return "[" + "#" * full + "." * (width - full) + f"] {frac * 100:5.1f}%"


def _eta(sec: float | None) -> str:
    if sec is None:
        return "-"
    sec = int(sec)
    return (
        f"{sec // 3600}h{sec % 3600 // 60:02d}m" if sec >= 3600 else f"{sec // 60}m{sec % 60:02d}s"
    )


def strategy_totals(st: m.StrategyStatus) -> dict[str, Any]:
    total = sum((u.current_volume or Decimal(0) for u in st.users), Decimal(0))
    target = sum((u.target_volume for u in st.users), Decimal(0))
    return {
        "strategy_id": st.strategy_id,
        "strategy_name": st.strategy_name,
        "is_running": any(u.state in RUNNING_STATES for u in st.users),
        "target_volume": str(target),
        "total_volume": str(total),
        "progress": float(min(Decimal(1), total / target)) * 100 if target > 0 else 0.0,
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
                "users": msgspec.to_builtins(st.users),
            }
            for st in reply.strategies
        ],
    }


def to_text(reply: m.StatusReply) -> str:
    lines = [
        f"alphavol supervisor pid {reply.pid}  day {reply.day}  phase {reply.phase}"
        + (f"  next run {_ts(reply.next_run_at)}" if reply.next_run_at else "")
    ]
    for st in reply.strategies:
        t = strategy_totals(st)
        lines.append("")
        lines.append(
            f"{st.strategy_id} ({st.strategy_name}) {st.token}"
            f"{'' if st.enabled else ' [disabled]'}: total {_num(Decimal(t['total_volume']))}"
            f" / {_num(Decimal(t['target_volume']))}  cost {money(t['cost_today'])} USDT"
        )
        for u in st.users:
            batch = f"batch {u.batch} {u.trade_index}/{u.loops}" if u.batch else "batch -"
            lines.append(
                f"  user {u.user_id:<8} {u.state:<9} pid {u.pid or '-':<7} restarts {u.restarts}"
                f"  {_num(u.current_volume)}/{_num(u.target_volume)} {bar(u.current_volume, u.target_volume)}"
                f"  {batch}  cost {money(u.cost_today)} USDT  eta {_eta(u.eta_seconds)}"
            )
            if u.reason and u.state in ("FATAL", "BACKOFF", "STOPPED", "STOPPING"):
                lines.append(f"      why: {u.reason}")
            if u.last_error and u.last_error != u.reason:
                lines.append(f"      last error: {u.last_error}")
            for left in u.leftovers:
                lines.append(f"      leftover {left.quantity} {left.token}")
    return "\n".join(lines)
