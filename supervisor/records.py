"""What the supervisor knows about each user and each (strategy, user) pair.

``UserRecord`` (``supervisor.user_record``) is one user process and its transitions;
``Row`` is the progress of one strategy of that user, fed by the process's events.
``apply_event`` is the one place events from a child change what ``status`` shows.

Volumes shown are what was read from the exchange, never an estimate: ``current_volume``
is the latest figure the user process (or the supervisor's own check) read, with the wall
time of that read (``volume_at``); the credit of trades since then (``pending_credit``)
feeds the ETA and is shown apart, as unconfirmed (``unconfirmed_volume``). A strategy's own phase comes from ``PhaseChanged`` events naming it:
one that has not begun while another strategy of the same process works is QUEUED.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from config.settings import EffectiveSettings
from protocol import messages as m
from protocol.vocab import RowPhase, RowState, UserPhase, VolumeBasis
from supervisor.states import State

if TYPE_CHECKING:
    from supervisor.user_record import UserRecord


@dataclass
class Row:
    settings: EffectiveSettings
    current_volume: Decimal | None = None
    start_volume: Decimal | None = None
    basis: VolumeBasis = "reported"
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
    volume_at: float | None = None  # wall time of the read that gave current_volume
    pending_credit: Decimal = Decimal(0)  # expected credit of trades since that read
    phase: UserPhase | None = None  # this strategy's phase in the current process
    started: bool = False  # the current process began this strategy
    stopped: str | None = None  # the operator stopped this strategy (why)
    # its config cannot work (a token or chain the exchange does not list): the line
    # saying so; FATAL until a reload changes this strategy
    fatal: str | None = None

    @property
    def target(self) -> Decimal:
        return self.settings.target_volume

    @property
    def active(self) -> bool:
        """Begun by the current process and not ended."""
        return self.started and self.phase != "done"

    @property
    def to_run(self) -> bool:
        """Still has work today (not reached, skipped or stopped)."""
        return not (self.reached or self.skipped or self.stopped or self.fatal)

    def read(self, volume: Decimal, at: float | None) -> None:
        """A volume read from the exchange (``at``: wall time of the read)."""
        self.current_volume = volume
        self.volume_at = at
        self.pending_credit = Decimal(0)

    def eta(self, now: float) -> float | None:
        if self.reached or self.current_volume is None or self.first_trade_at is None:
            return None
        if self.trades < 1 or self.credit_total <= 0:
            return None
        remaining = self.target - self.current_volume - self.pending_credit
        if remaining <= 0:
            return 0.0
        rate = float(self.credit_total) / max(now - self.first_trade_at, 1e-3)
        return float(remaining) / rate if rate > 0 else None


def rows_for(settings: list[EffectiveSettings]) -> dict[str, Row]:
    """One fresh row per strategy, in config order."""
    return {s.strategy_id: Row(settings=s) for s in settings}


def apply_event(
    rec: UserRecord, ev: m.Msg, *, now: float, redact=lambda s: s, wall: float | None = None
) -> None:
    """Fold one event from the user's process into the record (never raises on odd input).
    ``wall``: the supervisor's wall time, for events without their own ``at``."""
    row = rec.rows.get(getattr(ev, "strategy_id", None) or "")
    at = getattr(ev, "at", 0.0) or wall
    if isinstance(ev, m.PhaseChanged):
        if row is not None:
            row.phase, row.started = ev.phase, True
        elif not ev.strategy_id:
            rec.phase = ev.phase
    elif isinstance(ev, m.VolumeChecked) and row is not None:
        row.read(ev.current, at)
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
        row.pending_credit += ev.credit  # an estimate: shown apart, as unconfirmed
        if row.first_trade_at is None:
            row.first_trade_at = now
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
            if s.final_volume is not None and s.final_volume != r.current_volume:
                r.read(s.final_volume, at)  # its last read, just before the summary
            if r.start_volume is None and s.start_volume is not None:
                r.start_volume = s.start_volume
            r.reached = r.reached or s.reached
            r.cost = max(r.cost, s.cost)
            r.trades = max(r.trades, s.trades)


def row_state(rec: UserRecord, row: Row) -> RowState:
    """What ``status`` calls this strategy of this user (the user's state, refined)."""
    state = rec.state
    if row.fatal:
        return State.FATAL.value
    if row.skipped:
        return State.SKIPPED.value
    if row.reached and state in (State.RUNNING, State.STARTING, State.DONE, State.STOPPING):
        return State.DONE.value
    if row.stopped:
        return State.STOPPING.value if rec.child and row.active else State.STOPPED.value
    if state in (State.RUNNING, State.STARTING) and not row.started:
        if any(r.active for r in rec.rows.values() if r is not row):
            return QUEUED  # waits for the strategy its process is working on
    return state.value


QUEUED: RowState = "QUEUED"  # a strategy waiting its turn in its user's running process


def row_reason(rec: UserRecord, row: Row) -> str | None:
    """Why this strategy of this user is where it is: its own reason when it has one (the
    operator stopped it, it was at target at the check, it reached its target), else its
    user process's."""
    if row.stopped:
        return row.stopped
    if row.skipped:
        return "already at target"
    if row.reached and row_state(rec, row) == State.DONE.value:
        return "target reached"
    return rec.sm.reason


def row_status(rec: UserRecord, row: Row, *, now: float) -> m.UserStatus:
    state_s = row_state(rec, row)
    working = state_s in (State.RUNNING.value, State.STARTING.value)
    own = rec.child is not None and state_s not in (QUEUED, State.STOPPED.value)
    phase: RowPhase | None = (
        "queued" if state_s == QUEUED else (row.phase or rec.phase) if own else None
    )
    return m.UserStatus(
        user_id=rec.user_id,
        strategy_id=row.settings.strategy_id,
        state=state_s,
        phase=phase,
        pid=rec.child.pid if own and rec.child else None,
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
        reason=row_reason(rec, row),
        eta_seconds=row.eta(now) if working else None,
        leftovers=list(rec.summary.leftovers) if rec.summary else [],
        token=row.chosen.token if row.chosen else None,
        mul_point=row.chosen.mul_point if row.chosen else None,
        cost_per_credit=row.chosen.cost_per_credit if row.chosen else None,
        volume_at=row.volume_at,
        unconfirmed_volume=row.pending_credit if row.pending_credit > 0 else None,
    )
