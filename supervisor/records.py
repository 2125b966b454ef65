"""What the supervisor knows about each (strategy, user) pair: its ``Row``.

``UserRecord`` (``supervisor.user_record``) is one user process and its transitions;
``Row`` is the progress of one strategy of that user, fed by the process's events (the
record's ``on_event`` calls the row's methods; nothing else writes a row's fields).

Volumes shown are what was read from the exchange, never an estimate: ``current_volume``
is the latest figure the user process (or the supervisor's own check) read, with the wall
time of that read (``volume_at``); the credit of trades since then (``pending_credit``)
feeds the ETA and is shown apart, as unconfirmed (``unconfirmed_volume``). A strategy's own phase comes from ``PhaseChanged`` events naming it:
one that has not begun while another strategy of the same process works is QUEUED.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from config.settings import EffectiveSettings
from protocol import messages as m
from protocol.vocab import UserPhase, VolumeBasis
from supervisor.states import RowState, State

if TYPE_CHECKING:
    from supervisor.user_record import UserRecord
    from supervisor.volumes import VolumeResult


class RowEnd(enum.StrEnum):
    """Why a strategy has no more work today besides reaching its target (``Row.reached``
    is a fact read from the exchange, kept apart: a strategy stopped or failed may still
    have reached its target)."""

    SKIPPED = "SKIPPED"  # at target when checked
    STOPPED = "STOPPED"  # the operator stopped it
    FATAL = "FATAL"  # its config cannot work (a token or chain the exchange does not list)


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
    end: RowEnd | None = None  # no more work today for another reason than its target
    # why it was stopped (the operator's request, or the config line that makes it FATAL
    # while its user's other strategies go on); status shows it as the reason
    why: str | None = None
    last_error: str | None = None
    first_trade_at: float | None = None  # monotonic, for the ETA
    credit_total: Decimal = Decimal(0)
    chosen: m.TokenChosen | None = None  # target_token auto: the latest choice
    volume_at: float | None = None  # wall time of the read that gave current_volume
    pending_credit: Decimal = Decimal(0)  # expected credit of trades since that read
    phase: UserPhase | None = None  # this strategy's phase in the current process
    started: bool = False  # the current process began this strategy

    @property
    def target(self) -> Decimal:
        return self.settings.target_volume

    @property
    def skipped(self) -> bool:
        return self.end is RowEnd.SKIPPED

    @property
    def stopped(self) -> str | None:
        """Why it was stopped (None: it was not)."""
        return self.why

    @property
    def fatal(self) -> bool:
        return self.end is RowEnd.FATAL

    @property
    def active(self) -> bool:
        """Begun by the current process and not ended."""
        return self.started and self.phase != "done"

    @property
    def to_run(self) -> bool:
        """Still has work today (not reached, skipped, stopped or FATAL)."""
        return not (self.reached or self.end or self.why)

    # ------------------------------------------------------------ its own end
    def skip(self) -> None:
        """At target when checked."""
        self.end = RowEnd.SKIPPED

    def stop(self, why: str) -> None:
        """Stopped by the operator (a repeated stop keeps the first reason)."""
        self.why = self.why or why
        self.end = self.end or RowEnd.STOPPED

    def fail(self, text: str) -> None:
        """Its config cannot work: FATAL until a reload changes it."""
        self.end = RowEnd.FATAL
        self.last_error = text

    def reset(self) -> None:
        """Operator ``start``: what it reached, a skip and a stop are forgotten (FATAL for
        its config stays until a reload changes it)."""
        self.reached = False
        self.why = None
        if self.end is not RowEnd.FATAL:
            self.end = None

    def revive(self) -> bool:
        """A reload changed its settings: FATAL for its config no more (True if it was)."""
        if not self.fatal:
            return False
        self.end = self.why = self.last_error = None
        return True

    def exited_done(self) -> None:
        """Its process exited having reached every target it was given."""
        self.reached = self.reached or not (self.skipped or self.stopped)

    def restart(self) -> None:
        """A new process: it has not begun this strategy."""
        self.phase, self.started = None, False

    # ------------------------------------------------------------ events of its process
    def read(self, volume: Decimal, at: float | None) -> None:
        """A volume read from the exchange (``at``: wall time of the read)."""
        self.current_volume = volume
        self.volume_at = at
        self.pending_credit = Decimal(0)

    def checked(self, res: VolumeResult, at: float, redact: Callable[[str], str]) -> bool:
        """The supervisor's own volume check: True when at target (SKIPPED); raises on a
        number that is not a volume."""
        self.basis = res.basis
        if res.current is None:
            if res.error:
                self.last_error = redact(res.error)
            return False
        if not res.current.is_finite() or res.current < 0:
            raise ValueError(f"volume {res.current} is not a finite, non-negative number")
        self.read(res.current, at)
        self.start_volume = res.current
        if res.at_target:
            self.skip()
        return res.at_target

    def error(self, text: str) -> None:
        self.last_error = text

    def on_event(self, ev: m.Msg, *, now: float, at: float | None) -> None:
        """An event of its process naming it (``UserRecord.on_event`` hands it over)."""
        if isinstance(ev, m.PhaseChanged):
            self.phase, self.started = ev.phase, True
        elif isinstance(ev, m.VolumeChecked):
            self.read(ev.current, at)
            self.basis = ev.basis
            if self.start_volume is None:
                self.start_volume = ev.current
            if ev.current >= ev.target:
                self.reached = True
        elif isinstance(ev, m.TokenChosen):
            self.chosen = ev
        elif isinstance(ev, m.BatchPlanned):
            self.batch, self.loops, self.trade_index = ev.batch, ev.loops, 0
        elif isinstance(ev, m.TradeDone):
            self.trade_done(ev, now)

    def trade_done(self, ev: m.TradeDone, now: float) -> None:
        self.trades += 1
        self.batch, self.trade_index, self.loops = ev.batch, ev.index, ev.loops
        self.cost += ev.cost
        self.credit_total += ev.credit
        self.pending_credit += ev.credit  # an estimate: shown apart, as unconfirmed
        if self.first_trade_at is None:
            self.first_trade_at = now

    def summarised(self, s: m.StrategySummary, at: float | None) -> None:
        """Its line of the process's ``Summary``."""
        if s.final_volume is not None and s.final_volume != self.current_volume:
            self.read(s.final_volume, at)  # its last read, just before the summary
        if self.start_volume is None and s.start_volume is not None:
            self.start_volume = s.start_volume
        self.reached = self.reached or s.reached
        self.cost = max(self.cost, s.cost)
        self.trades = max(self.trades, s.trades)

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


def row_state(rec: UserRecord, row: Row) -> RowState:
    """What ``status`` calls this strategy of this user (the user's state, refined)."""
    state = rec.state
    if row.fatal:
        return RowState.FATAL
    if row.skipped:
        return RowState.SKIPPED
    if row.reached and state in (State.RUNNING, State.STARTING, State.DONE, State.STOPPING):
        return RowState.DONE
    if row.stopped:
        return RowState.STOPPING if rec.child and row.active else RowState.STOPPED
    if state in (State.RUNNING, State.STARTING) and not row.started:
        if any(r.active for r in rec.rows.values() if r is not row):
            return RowState.QUEUED  # waits for the strategy its process is working on
    return RowState(state.value)


def row_reason(rec: UserRecord, row: Row) -> str | None:
    """Why this strategy of this user is where it is: its own reason when it has one (the
    operator stopped it, it was at target at the check, it reached its target), else its
    user process's."""
    if row.stopped:
        return row.stopped
    if row.skipped:
        return "already at target"
    if row.reached and row_state(rec, row) == RowState.DONE:
        return "target reached"
    return rec.sm.reason


def row_status(rec: UserRecord, row: Row, *, now: float) -> m.UserStatus:
    state = row_state(rec, row)
    working = state in (RowState.RUNNING, RowState.STARTING)
    own = rec.child is not None and state not in (RowState.QUEUED, RowState.STOPPED)
    phase = "queued" if state == RowState.QUEUED else (row.phase or rec.phase) if own else None
    return m.UserStatus(
        user_id=rec.user_id,
        strategy_id=row.settings.strategy_id,
        state=state,
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
