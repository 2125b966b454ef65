"""What the supervisor knows about each user and each (strategy, user) pair.

``UserRecord`` (``supervisor.user_record``) is one user process and its transitions;
``Row`` is the progress of one strategy of that user, fed by the process's events.
``apply_event`` is the one place events from a child change what ``status`` shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from config.settings import EffectiveSettings
from protocol import messages as m
from supervisor.states import State

if TYPE_CHECKING:
    from supervisor.user_record import UserRecord


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
    chosen: m.TokenChosen | None = None  # target_token auto: the latest choice

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


def rows_for(settings: list[EffectiveSettings]) -> dict[str, Row]:
    """One fresh row per strategy, in config order."""
    return {s.strategy_id: Row(settings=s) for s in settings}


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
    elif isinstance(ev, m.TokenChosen) and row is not None:
        row.chosen = ev
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
        token=row.chosen.token if row.chosen else None,
        mul_point=row.chosen.mul_point if row.chosen else None,
        cost_per_credit=row.chosen.cost_per_credit if row.chosen else None,
    )
