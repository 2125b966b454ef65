"""What the supervisor knows about each user and each (strategy, user) pair.

``UserRecord`` is one user process (state machine, pid, restarts, crash history);
``Row`` is the progress of one strategy of that user, fed by the process's events.
``apply_event`` is the one place events from a child change what ``status`` shows.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from config.settings import EffectiveSettings
from protocol import messages as m
from supervisor.restart import CrashHistory, RestartPolicy
from supervisor.spawn import Child
from supervisor.states import State, StateMachine


@dataclass
class Row:
    settings: EffectiveSettings
    current_volume: Decimal | None = None
    start_volume: Decimal | None = None
    basis: str = "reported"
    batch: int = 0
    trade_index: int = 0
    loops: int = 0
    trades: int = 0
    cost: Decimal = Decimal(0)
    reached: bool = False
    skipped: bool = False
    last_error: str | None = None
    first_trade_at: float | None = None  # monotonic, for the ETA
    credit_total: Decimal = Decimal(0)

    @property
    def target(self) -> Decimal:
        return self.settings.target_volume

    def eta(self, now: float) -> float | None:
        if self.reached or self.current_volume is None or self.first_trade_at is None:
            return None
        if self.trades < 1 or self.credit_total <= 0:
            return None
        remaining = self.target - self.current_volume
        if remaining <= 0:
            return 0.0
        rate = float(self.credit_total) / max(now - self.first_trade_at, 1e-3)
        return float(remaining) / rate if rate > 0 else None


@dataclass
class UserRecord:
    user_id: str
    rows: dict[str, Row]  # strategy_id -> Row, in config order
    policy: RestartPolicy
    sm: StateMachine = field(init=False)
    crashes: CrashHistory = field(init=False)
    child: Child | None = None
    restarts: int = 0
    phase: str | None = None
    next_start_at: float = 0.0  # monotonic; BACKOFF waits for this
    stop_command: m.Command | None = None  # Drain/StopNow to (re)send while STOPPING
    stop_sent_at: float | None = None
    summary: m.Summary | None = None
    summary_seen: asyncio.Event = field(default_factory=asyncio.Event)
    last_error: str | None = None
    remove_after_exit: bool = False
    checked: bool = False  # volume checked for the current day
    settings_changed: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        self.sm = StateMachine(self.user_id)
        self.crashes = CrashHistory(self.policy)

    @property
    def state(self) -> State:
        return self.sm.state

    @property
    def settings(self) -> list[EffectiveSettings]:
        """The strategies this user still has to run today (skipped ones left out)."""
        return [r.settings for r in self.rows.values() if not r.skipped and not r.reached]


def apply_event(rec: UserRecord, ev: m.Msg, *, now: float, redact=lambda s: s) -> None:
    """Fold one event from the user's process into the record (never raises on odd input)."""
    row = rec.rows.get(getattr(ev, "strategy_id", None) or "")
    if isinstance(ev, m.PhaseChanged):
        rec.phase = ev.phase
    elif isinstance(ev, m.VolumeChecked) and row is not None:
        row.current_volume = ev.current
        row.basis = ev.basis
        if row.start_volume is None:
            row.start_volume = ev.current
        if ev.current >= ev.target:
            row.reached = True
    elif isinstance(ev, m.BatchPlanned) and row is not None:
        row.batch, row.loops, row.trade_index = ev.batch, ev.loops, 0
    elif isinstance(ev, m.TradeDone) and row is not None:
        row.trades += 1
        row.batch, row.trade_index, row.loops = ev.batch, ev.index, ev.loops
        row.cost += ev.cost
        row.credit_total += ev.credit
        if row.first_trade_at is None:
            row.first_trade_at = now
        if row.current_volume is not None:
            row.current_volume += ev.credit
    elif isinstance(ev, m.ErrorReport):
        text = redact(f"{ev.kind}: {ev.message}")
        rec.last_error = text
        if row is not None:
            row.last_error = text
    elif isinstance(ev, m.Summary):
        rec.summary = ev
        for s in ev.strategies:
            r = rec.rows.get(s.strategy_id)
            if r is None:
                continue
            if s.final_volume is not None:
                r.current_volume = s.final_volume
            if r.start_volume is None and s.start_volume is not None:
                r.start_volume = s.start_volume
            r.reached = r.reached or s.reached
            r.cost = max(r.cost, s.cost)
            r.trades = max(r.trades, s.trades)


def row_status(rec: UserRecord, row: Row, *, now: float) -> m.UserStatus:
    state = rec.state
    if row.skipped:
        state_s = State.SKIPPED.value
    elif row.reached and state in (State.RUNNING, State.STARTING, State.DONE):
        state_s = State.DONE.value
    else:
        state_s = state.value
    return m.UserStatus(
        user_id=rec.user_id,
        strategy_id=row.settings.strategy_id,
        state=state_s,
        phase=rec.phase if rec.child else None,
        pid=rec.child.pid if rec.child else None,
        restarts=rec.restarts,
        current_volume=row.current_volume,
        start_volume=row.start_volume,
        target_volume=row.target,
        basis=row.basis,
        batch=row.batch,
        trade_index=row.trade_index,
        loops=row.loops,
        trades=row.trades,
        cost_today=row.cost,
        last_error=row.last_error or rec.last_error,
        reason=rec.sm.reason,
        eta_seconds=row.eta(now),
        leftovers=list(rec.summary.leftovers) if rec.summary else [],
    )
