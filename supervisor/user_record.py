"""One user's process and every way it moves (supervisord's ``Subprocess``).

``UserRecord`` holds what the supervisor knows about one user process (state machine,
child, restarts, crash history, the stop command in force) and its rows of progress
(``supervisor.records.Row``). The arbiter never moves a user itself: it calls one of the
methods here, each of which checks its precondition and moves through the state machine
(``supervisor.states``), the one place transitions are logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from config.settings import EffectiveSettings
from protocol import messages as m
from protocol.exitcodes import Exit
from protocol.vocab import UserPhase
from supervisor.records import Row, rows_for
from supervisor.restart import Action, CrashHistory, Decision, RestartPolicy
from supervisor.spawn import Child
from supervisor.states import ALIVE, TERMINAL, IllegalTransition, State, StateMachine

if TYPE_CHECKING:
    from supervisor.volumes import VolumeResult

log = structlog.get_logger(__name__)


@dataclass
class UserRecord:
    """One user's process. A method whose precondition does not hold raises
    ``IllegalTransition``; one that needs a command sent to the process returns it (the
    caller sends it)."""

    user_id: str
    rows: dict[str, Row]  # strategy_id -> Row, in config order
    policy: RestartPolicy
    sm: StateMachine = field(init=False)
    crashes: CrashHistory = field(init=False)
    child: Child | None = None
    restarts: int = 0
    phase: UserPhase | None = None
    next_start_at: float = 0.0  # monotonic; BACKOFF waits for this
    stop_command: m.Command | None = None  # Drain/StopNow to (re)send while STOPPING
    stop_sent_at: float | None = None
    summary: m.Summary | None = None
    summary_seen: asyncio.Event = field(default_factory=asyncio.Event)
    last_error: str | None = None
    remove_after_exit: bool = False
    # the strategies the operator stopped with the whole user (`alphavol stop`) today
    stop_requested: set[str] = field(default_factory=set)
    checked: bool = False  # volume checked for the current day
    settings_changed: list[EffectiveSettings] | None = None
    # the strategies the current process was given, in its order (its spec, then updates)
    sent_ids: list[str] = field(default_factory=list)
    # per-strategy Drain/StopNow in force in the current process (re-sent with Pings)
    strategy_stops: dict[str, m.Command] = field(default_factory=dict)
    # FATAL because of its settings (its process exited BAD_CONFIG): a reload that
    # changes them starts it again
    config_fault: bool = False

    def __post_init__(self) -> None:
        self.sm = StateMachine(self.user_id)
        self.crashes = CrashHistory(self.policy)

    @classmethod
    def create(
        cls, user_id: str, settings: list[EffectiveSettings], policy: RestartPolicy
    ) -> UserRecord:
        return cls(user_id=user_id, rows=rows_for(settings), policy=policy)

    @property
    def state(self) -> State:
        return self.sm.state

    @property
    def settings(self) -> list[EffectiveSettings]:
        """The strategies this user still has to run today (skipped, reached and stopped
        ones left out)."""
        return [r.settings for r in self.rows.values() if r.to_run]

    @property
    def can_stop(self) -> bool:
        return self.state in (State.PENDING, State.BACKOFF) or self.state in ALIVE

    @property
    def can_requeue(self) -> bool:
        return self.state in TERMINAL

    def due(self, mono: float) -> bool:
        """Should be (re)started now: queued and checked, or its backoff is over."""
        if self.state == State.PENDING:
            return self.checked
        return self.state == State.BACKOFF and mono >= self.next_start_at

    def _require(self, ok: bool, what: str) -> None:
        if not ok:
            raise IllegalTransition(f"user {self.user_id}: cannot {what} in {self.state}")

    # ------------------------------------------------------------ the volume check
    def volume_result(self, res: VolumeResult, *, at: float, redact: Callable[[str], str]) -> None:
        """Fold one ``VolumeResult`` in (raises on a number that is not a volume)."""
        row = self.rows.get(res.strategy_id)
        if row is None:
            return
        if row.checked(res, at, redact):
            log.info(
                "user_at_target",
                user_id=self.user_id,
                strategy_id=res.strategy_id,
                current=str(res.current),
                target=str(res.target),
            )
        if res.session_expired and self.state == State.PENDING:
            self.fail(row.last_error or "session expired", at=at)

    def row_error(self, strategy_id: str, text: str) -> None:
        row = self.rows.get(strategy_id)
        if row is not None:
            row.error(text)

    def check_finished(self, *, at: float) -> bool:
        """Today's volume check is in: SKIPPED (returns True) when nothing is left to do."""
        self.checked = True
        if self.state == State.PENDING and not self.settings:
            self.sm.to(State.SKIPPED, at=at, reason="already at target")
            return True
        return False

    def fail(self, reason: str, *, at: float) -> None:
        """FATAL while queued (the volume check found its session expired)."""
        self._require(self.state == State.PENDING, "fail while queued")
        self.sm.to(State.FATAL, at=at, reason=reason)

    # ------------------------------------------------------------ events of its process
    def on_event(
        self,
        ev: m.Msg,
        *,
        now: float,
        redact: Callable[[str], str] = str,
        wall: float | None = None,
    ) -> None:
        """Fold one event from the user's process in (never raises on odd input): the one
        place events change what ``status`` shows. ``now``: monotonic; ``wall``: the
        supervisor's wall time, for events without their own ``at``."""
        row = self.rows.get(getattr(ev, "strategy_id", None) or "")
        at = getattr(ev, "at", 0.0) or wall
        if isinstance(ev, m.PhaseChanged) and row is None:
            if not ev.strategy_id:
                self.phase = ev.phase
        elif isinstance(ev, m.ErrorReport):
            self.last_error = redact(f"{ev.kind}: {ev.message}")
            if row is not None:
                row.error(self.last_error)
        elif isinstance(ev, m.Summary):
            self.summary = ev
            for s in ev.strategies:
                if s.strategy_id in self.rows:
                    self.rows[s.strategy_id].summarised(s, at)
            self.summary_seen.set()
        elif row is not None:
            row.on_event(ev, now=now, at=at)

    # ------------------------------------------------------------ the process
    def spawning(self, *, at: float) -> None:
        """About to fork: STARTING (so it counts against the limit while the fork runs, and
        a stop meanwhile takes the ALIVE path: the command reaches it with its first Ping)."""
        self._require(self.state in (State.PENDING, State.BACKOFF) and not self.child, "spawn")
        if self.state == State.BACKOFF:
            self.restarts += 1
        self.summary = None
        self.settings_changed = None  # the spec carries the latest settings
        self.sent_ids = [s.strategy_id for s in self.settings]
        self.strategy_stops = {}
        for row in self.rows.values():
            row.restart()
        self.summary_seen = asyncio.Event()
        self.stop_command = None
        self.stop_sent_at = None
        self.phase = None
        restart = f", restart {self.restarts}" if self.restarts else ""
        self.sm.to(State.STARTING, at=at, reason="forking" + restart)

    def spawned(self, child: Child, *, mono: float) -> None:
        """The fork returned. Its Hello may have been read already (RUNNING), or a stop
        may have come meanwhile (STOPPING)."""
        self._require(self.state in ALIVE and self.child is None, "be spawned")
        child.started = mono
        self.child = child
        if self.state == State.STARTING:
            restart = f", restart {self.restarts}" if self.restarts else ""
            self.sm.explain(f"pid {child.pid}{restart}")

    def spawn_failed(self, reason: str, *, at: float) -> None:
        self._require(self.state in ALIVE and self.child is None, "fail to spawn")
        if self.state == State.STOPPING:
            self.sm.to(State.STOPPED, at=at, reason=f"stopped before it started ({reason})")
        else:
            self.sm.to(State.FATAL, at=at, reason=reason)

    def hello(self, pid: int, *, at: float) -> list[m.Command]:
        """The process said Hello: RUNNING; returns the commands it must hear again (a
        stop or new settings sent while it was not connected yet)."""
        if self.state not in ALIVE:
            return []  # a late frame from a process already gone
        if self.state == State.STARTING:
            self.sm.to(State.RUNNING, at=at, reason=f"pid {pid}")
        out: list[m.Command] = [self.stop_command] if self.stop_command is not None else []
        if self.settings_changed is not None:
            out.append(m.UpdateSettings(settings=self.settings_changed))
        out.extend(self.strategy_stops.values())
        return out

    def stop(self, *, now: bool, reason: str, at: float, mono: float) -> m.Command | None:
        """Stop this user: queued or in backoff -> STOPPED; running -> STOPPING, returning
        ``Drain`` (``now``: ``StopNow``) to send. A repeated drain is the same drain (returns
        None); only ``now`` after a drain escalates to ``StopNow``."""
        self._require(self.can_stop, "stop")
        if self.state not in ALIVE:
            self.sm.to(State.STOPPED, at=at, reason=reason)
            return None
        if self.stop_command is not None and (isinstance(self.stop_command, m.StopNow) or not now):
            return None
        cmd: m.Command = m.StopNow() if now else m.Drain()
        self.stop_command = cmd
        self.stop_sent_at = mono
        self.sm.to(State.STOPPING, at=at, reason=f"{reason} ({type(cmd).__name__})")
        return cmd

    def others_to_run(self, strategy_id: str) -> bool:
        """Has this user work left besides ``strategy_id``?"""
        return any(r.to_run for sid, r in self.rows.items() if sid != strategy_id)

    def operator_stop(
        self, strategy_id: str | None, *, now: bool, at: float, mono: float
    ) -> list[m.Command] | None:
        """``alphavol stop``: this strategy of this user (the whole user when it was its
        last one to run, or when ``strategy_id`` is None). None when there is nothing to
        stop (that strategy reached its target or was skipped); else the commands to send."""
        row = self.rows[strategy_id] if strategy_id is not None else None
        if row is not None and not (row.to_run or row.stopped):
            return None
        if strategy_id is not None and self.others_to_run(strategy_id):
            return self.stop_strategy(strategy_id, now=now, reason=f"stop {strategy_id} requested")
        if row is not None:
            row.stop(f"stop {strategy_id} requested")
        self.stop_requested |= {sid for sid, r in self.rows.items() if r.to_run}
        cmd = self.stop(now=now, reason="stop requested", at=at, mono=mono)
        return [cmd] if cmd is not None else []

    def config_fatal(
        self, strategy_id: str, text: str, *, at: float, mono: float
    ) -> list[m.Command] | None:
        """This strategy cannot work as configured (``text`` names the config line): FATAL;
        its other strategies go on, and the user stops when it was its last one. None when
        it had no work left; else the commands to send."""
        row = self.rows.get(strategy_id)
        if row is None or not row.to_run:
            return None
        out: list[m.Command] = []
        if self.others_to_run(strategy_id):
            if self.can_stop:
                out = self.stop_strategy(strategy_id, now=False, reason=text)
        elif self.state == State.PENDING:
            self.fail(text, at=at)
        elif self.can_stop:
            cmd = self.stop(now=False, reason=text, at=at, mono=mono)
            out = [cmd] if cmd is not None else []
        row.fail(text)
        return out

    def remove_when_exited(self) -> None:
        """Gone from the config (or from this node): it leaves the records when its
        process exits, whatever the exit."""
        self.remove_after_exit = True

    def stop_strategy(self, strategy_id: str, *, now: bool, reason: str) -> list[m.Command]:
        """Stop one strategy while the user's others go on (the caller stops the whole
        user when this was its last one). The process gets ``Drain``/``StopNow`` naming it
        when it has begun it; one it has not begun is taken out of its list of strategies
        (``UpdateSettings``), so it never begins. Returns the commands to send."""
        row = self.rows[strategy_id]
        self._require(self.can_stop and (row.to_run or bool(row.stopped)), "stop a strategy")
        row.stop(reason)
        if self.child is None and self.state not in ALIVE:
            return []  # queued or in backoff: its next process is not given it
        if row.active:
            old = self.strategy_stops.get(strategy_id)
            if old is not None and (isinstance(old, m.StopNow) or not now):
                return []  # a repeated drain is the same drain
            cmd: m.Command = (
                m.StopNow(strategy_id=strategy_id) if now else m.Drain(strategy_id=strategy_id)
            )
            self.strategy_stops[strategy_id] = cmd
            log.info(
                "strategy_stopping",
                user_id=self.user_id,
                strategy_id=strategy_id,
                how=type(cmd).__name__,
                reason=reason,
            )
            return [cmd]
        if strategy_id not in self.sent_ids:
            return []
        # not begun: the process's list without it, in the process's own order (it counts
        # its place in that list, so finished strategies stay in it)
        self.sent_ids = [sid for sid in self.sent_ids if sid != strategy_id]
        self.settings_changed = [
            self.rows[sid].settings for sid in self.sent_ids if sid in self.rows
        ]
        log.info("strategy_unqueued", user_id=self.user_id, strategy_id=strategy_id, reason=reason)
        return [m.UpdateSettings(settings=self.settings_changed)]

    def exited(
        self,
        child: Child,
        code: int | None,
        *,
        now: float,
        at: float,
        supervisor_stopping: bool,
        redact: Callable[[str], str],
    ) -> Decision | None:
        """Its process exited with ``code``: what the restart policy makes of it (None when
        ``child`` is not this user's current process)."""
        if self.child is not child:
            return None
        self.child = None
        requested = self.stop_command is not None
        d = self.crashes.on_exit(
            code, now=now, ran_for=now - child.started, requested_stop=requested
        )
        reason = self._exit_reason(d, redact)
        if self.summary is not None and self.summary.leftovers:
            log.error(
                "user_leftovers",
                user_id=self.user_id,
                leftovers=[f"{x.quantity} {x.token}" for x in self.summary.leftovers],
            )
        if not self.remove_after_exit:  # one removed leaves the records: no state to move to
            self._settle(d, code, reason, now=now, at=at, supervisor_stopping=supervisor_stopping)
        return d

    def _exit_reason(self, d: Decision, redact: Callable[[str], str]) -> str:
        """The policy's reason, with the process's own (its summary) or its last error."""
        if self.summary is not None and self.summary.reason:
            return f"{d.reason}: {redact(self.summary.reason)}"
        if d.action == Action.FATAL and self.last_error:
            return f"{d.reason}: {self.last_error}"
        return d.reason

    def _settle(
        self,
        d: Decision,
        code: int | None,
        reason: str,
        *,
        now: float,
        at: float,
        supervisor_stopping: bool,
    ) -> None:
        """Move where the policy's decision says: DONE, STOPPED, FATAL or BACKOFF (STOPPED
        in one move, with the exit as its cause, while the supervisor stops)."""
        if d.action == Action.DONE:
            if self.summary is None or all(
                s.reached for s in self.summary.strategies if s.strategy_id in self.rows
            ):
                for row in self.rows.values():
                    row.exited_done()
            self.sm.to(State.DONE, at=at, reason=reason)
        elif d.action in (Action.STOPPED, Action.FATAL):
            self.config_fault = d.action == Action.FATAL and code == Exit.BAD_CONFIG
            dst = State.STOPPED if d.action == Action.STOPPED else State.FATAL
            self.sm.to(dst, at=at, reason=reason)
        elif supervisor_stopping:
            self.sm.to(State.STOPPED, at=at, reason="supervisor stopping", cause=reason)
        else:
            self.next_start_at = now + d.delay
            self.sm.to(State.BACKOFF, at=at, reason=f"{reason}; restart in {d.delay:g} s")

    # ------------------------------------------------------------ back in the queue
    def requeue(self, reason: str, *, at: float, reset: bool = False) -> None:
        """A finished user has work again (operator ``start``: ``reset`` forgets its
        crashes and what it reached; a new strategy on reload): PENDING, to be checked."""
        self._require(self.can_requeue, "requeue")
        if reset:
            self.stop_requested = set()
            self.crashes.reset()
            for row in self.rows.values():
                row.reset()
        self.checked = False
        self.sm.to(State.PENDING, at=at, reason=reason)

    def revive(self, before: dict[str, EffectiveSettings], *, at: float) -> bool:
        """After a reload (``reconfigure``): a user that ended because of its settings
        (FATAL for a config reason, or a strategy the exchange does not list) and whose
        settings the reload changed is queued again (PENDING, to be checked; True). A
        running process is left alone: the fixed strategy runs in its next one."""
        changed = [sid for sid, row in self.rows.items() if before.get(sid) != row.settings]
        if not changed or not self.can_requeue:
            return False
        fixed = self.state == State.FATAL and self.config_fault
        for sid in changed:
            if self.rows[sid].revive():
                fixed = True
        if not fixed:
            return False
        self.config_fault = False
        self.last_error = None
        self.requeue("its config changed on reload", at=at)
        return True

    def new_day(self, settings: list[EffectiveSettings], *, at: float) -> None:
        """A new UTC day: everything about the old one is forgotten but the history."""
        self._require(self.can_requeue, "start a new day")
        self.rows = rows_for(settings)
        self.crashes.reset()
        self.restarts = 0
        self.stop_requested = set()
        self.summary = None
        self.last_error = None
        self.phase = None
        self.checked = False
        self.sm.to(State.PENDING, at=at, reason="new day")

    def reconfigure(self, settings: list[EffectiveSettings]) -> m.UpdateSettings:
        """New settings from a reload: rows keep their progress; returns the update for
        the running process (the Hello of a process not connected yet re-sends it)."""
        old = self.rows
        self.rows = {}
        for s in settings:
            row = old.get(s.strategy_id) or Row(settings=s)
            row.settings = s
            self.rows[s.strategy_id] = row
        self.settings_changed = list(self.settings)
        self.sent_ids = [s.strategy_id for s in self.settings]
        self.remove_after_exit = False
        return m.UpdateSettings(settings=self.settings_changed)
