"""The life of one user process, in one place (after supervisord's states.py/process.py).

Only this module changes the two things that decide what the process may do:

* the **phase** of the process (STARTING, RECONCILING, RUNNING, then DRAINING or
  STOPPING, PAUSED, DONE) and of each strategy it runs (CHECKING ... TRADING ..., then
  DRAINING or STOPPING, DONE): one transition function, ``to``, checks ``EDGES``, logs and
  emits every change to the supervisor (``PhaseChanged``);
* the **stop mode** (NONE, DRAIN, NOW) of the process or of one strategy. DRAIN finishes
  the round trip in progress at its planned prices, places nothing new and ends; NOW
  cancels what is open, sells what was bought and ends.

Rules: ``may_place(strategy)`` is the synchronous gate the round trip calls immediately
before it records an order's intent. A stop reaches the code that trades one way, as
``StopRequested``: entering an active phase while stopping raises it (``to``), so does
the gate ``check`` and every wait here (``sleep`` and ``until`` on any stop,
``sleep_unless_now`` on "now"); ``StrategyRunner.run`` catches it where its loop begins.
Queries (``stopping``, ``is_now``) remain for code that must choose *how* to finish.

A repeated drain is the same drain; only an explicit escalation makes it NOW: ``now()``
(StopNow: a second signal to the supervisor, ``stop --now``, ``shutdown --now``), a
second SIGTERM to this process (``on_signal``), or the drain's own grace running out.
A lost supervisor (parent-death signal, the event socket's disconnect, missed
heartbeats) is NOW, and the exit status SUPERVISOR_LOST (``exits.forced_exit``).
Terminal signals never reach a user process (``supervisor.template``).
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
from collections.abc import Callable

import structlog

from exchange.clock import SYSTEM_CLOCK, Clock
from protocol.exitcodes import Exit
from userproc.errors import StopRequested
from userproc.exits import forced_exit
from userproc.waits import first_of

__all__ = ["EDGES", "STRATEGY", "Lifecycle", "Phase", "StopMode", "StopRequested"]

log = structlog.get_logger(__name__)


class Phase(enum.StrEnum):
    STARTING = "starting"  # connecting link, client, stream
    RECONCILING = "reconciling"  # finishing journal trades left by an earlier run
    RUNNING = "running"  # the strategies run (each has its own phase)
    CHECKING = "checking"  # reading today's volume, planning
    TRADING = "trading"  # a round trip is in progress
    INTERVAL = "interval"  # waiting trade_interval_seconds between round trips
    SETTLING = "settling"  # waiting for the exchange's volume figure to catch up
    WAITING_PRICE = "waiting_price"  # volatility guard: price moved too much, not buying
    WAITING_STREAM = "waiting_stream"  # user stream down: no new order until it is back
    DRAINING = "draining"  # finishing the round trip in progress, then end
    STOPPING = "stopping"  # cancelling open orders, selling leftovers
    PAUSED = "paused"  # tokens could not be sold: buying nothing more
    DONE = "done"  # ended (any reason)


class StopMode(enum.IntEnum):  # ordered: a stop only ever escalates
    NONE = 0
    DRAIN = 1
    NOW = 2


# a strategy at work (a stop refuses them); its first phase is CHECKING
ACTIVE = frozenset(
    Phase(p) for p in "checking trading interval settling waiting_price waiting_stream".split()
)
_ENDING = {Phase.DRAINING, Phase.STOPPING, Phase.DONE}

EDGES: dict[Phase, frozenset[Phase]] = {
    Phase.STARTING: frozenset(
        {Phase.RECONCILING, Phase.DRAINING, Phase.STOPPING, Phase.PAUSED, Phase.DONE}
    ),
    Phase.RECONCILING: frozenset({Phase.RUNNING, *_ENDING, Phase.PAUSED}),
    Phase.RUNNING: frozenset({*_ENDING, Phase.PAUSED}),
    **{p: ACTIVE | _ENDING | {Phase.PAUSED} for p in ACTIVE},
    Phase.DRAINING: frozenset({Phase.STOPPING, Phase.PAUSED, Phase.DONE}),
    Phase.STOPPING: frozenset({Phase.PAUSED, Phase.DONE}),
    Phase.PAUSED: frozenset({Phase.DONE}),
    Phase.DONE: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A bug: an edge that ``EDGES`` does not list."""


# the strategy whose runner is executing (each runner is its own task): what a shared
# helper (``Session.call``) asks the lifecycle about
STRATEGY: contextvars.ContextVar[str | None] = contextvars.ContextVar("strategy", default=None)

Emit = Callable[[Phase, str | None, str | None], None]  # (phase, strategy_id, reason)


class Lifecycle:
    def __init__(self, clock: Clock = SYSTEM_CLOCK, emit: Emit | None = None) -> None:
        self.clock = clock
        self.emit = emit
        self._phase: dict[str | None, Phase] = {None: Phase.STARTING}
        self._mode: dict[str | None, StopMode] = {None: StopMode.NONE}
        self._why: dict[str | None, str] = {}
        self._grace: dict[str | None, float] = {None: 30.0}
        self._grace_tasks: dict[str | None, asyncio.Task] = {}
        self._events: dict[tuple[str | None, StopMode], asyncio.Event] = {}
        self._changed = asyncio.Event()  # set (and replaced) on every stop or grace change
        self._signals = 0
        self.lost = False  # the supervisor is gone (the stop is "now", see ``exit``)
        self.last_strategy: str | None = None

    def phase(self, strategy: str | None = None) -> Phase:
        return self._phase.get(strategy, Phase.DONE if strategy else Phase.STARTING)

    def mode(self, strategy: str | None = None) -> StopMode:
        own = self._mode.get(strategy, StopMode.NONE) if strategy else StopMode.NONE
        return max(self._mode[None], own)

    def stopping(self, strategy: str | None = None) -> bool:
        return self.mode(strategy) > StopMode.NONE

    def is_now(self, strategy: str | None = None) -> bool:
        return self.mode(strategy) is StopMode.NOW

    def reason(self, strategy: str | None = None) -> str | None:
        return self._why.get(strategy) or self._why.get(None)

    @property
    def exit(self) -> Exit | None:
        """The exit status the stop itself forces (``exits.forced_exit``), if any."""
        return forced_exit(supervisor_lost=self.lost)

    def check(self, strategy: str | None = None) -> None:
        """The gate before anything new begins: raises ``StopRequested`` while a stop
        (drain or now) applies to ``strategy`` (None: the process)."""
        if self.stopping(strategy):
            raise StopRequested(self.reason(strategy) or "stop requested")

    def may_place(self, strategy: str) -> bool:
        """The gate before every new order's intent: synchronous, so nothing can come
        between this answer and the intent being written."""
        return self.phase(strategy) is Phase.TRADING and not self.stopping(strategy)

    def to(self, new: Phase, reason: str | None = None, *, strategy: str | None = None) -> None:
        """The one transition function. Entering an active phase while a stop is in force
        raises ``StopRequested``; an edge ``EDGES`` does not list raises IllegalTransition."""
        old = self.phase(strategy) if strategy in self._phase else None
        if new in ACTIVE:
            self.check(strategy)
        if old == new:
            return
        if new not in (EDGES[old] if old else ACTIVE):  # a strategy starts in an active one
            edge = f"{old.value if old else 'new'} -> {new.value}"
            raise IllegalTransition(f"{strategy or 'process'}: {edge} is not an edge")
        self._phase[strategy] = new
        if strategy is not None:
            self.last_strategy = strategy
        log.info(
            "phase_changed",
            **({"old": old.value} if old else {}),
            new=new.value,
            **({"strategy_id": strategy} if strategy else {}),
            **({"reason": reason} if reason else {}),
        )
        if self.emit is not None:
            self.emit(new, strategy, reason)

    def begin_strategy(self, strategy: str, grace_seconds: float) -> None:
        """A strategy starts (CHECKING) with its ``stop_grace_seconds`` in force."""
        if self.phase() is not Phase.RUNNING:
            self.to(Phase.RUNNING)
        self._phase.pop(strategy, None)
        self.set_grace(strategy, grace_seconds)
        self.to(Phase.CHECKING, f"strategy {strategy}", strategy=strategy)

    def end_strategy(self, strategy: str, reason: str | None = None) -> None:
        if self._phase.get(strategy, Phase.DONE) is not Phase.DONE:
            self.to(Phase.DONE, reason, strategy=strategy)
        if self._grace.pop(strategy, None) is not None:  # the running ones' grace is in force
            self._update_process_grace()

    def set_grace(self, strategy: str | None, seconds: float) -> None:
        """``stop_grace_seconds`` of a strategy (None: of the process, before any runs).
        The process's grace is the longest of its strategies'. A drain already under way
        keeps its start and ends at start + the new grace."""
        self._grace[strategy] = seconds
        if strategy is not None:
            self._update_process_grace()

    def _update_process_grace(self) -> None:
        running = [g for k, g in self._grace.items() if k is not None]
        if running:
            self._grace[None] = max(running)
        self._announce()  # grace timers re-read it

    def end(self, reason: str | None, *, paused: bool = False) -> None:
        """The process is ending: every strategy and the process itself to DONE."""
        for key in [k for k in self._phase if k is not None]:
            self.end_strategy(key, reason)
        if paused and Phase.PAUSED in EDGES[self.phase()]:
            self.to(Phase.PAUSED, reason)
        if self.phase() is not Phase.DONE:
            self.to(Phase.DONE, reason)
        for t in self._grace_tasks.values():
            t.cancel()

    def drain(self, reason: str = "drain requested", *, strategy: str | None = None) -> None:
        """Finish the round trip in progress, then end. Idempotent."""
        if self.mode(strategy) >= StopMode.DRAIN:
            return
        self._set(strategy, StopMode.DRAIN, reason)
        timer = asyncio.get_running_loop().create_task(self._grace_timer(strategy))
        self._grace_tasks[strategy] = timer

    def now(self, reason: str = "stop now", *, strategy: str | None = None) -> None:
        """Cancel what is open, sell what was bought, end."""
        if self.mode(strategy) is StopMode.NOW:
            return
        self._set(strategy, StopMode.NOW, reason)

    def on_signal(self, name: str) -> None:
        """A signal sent to this very process (SIGTERM): the first drains, the next one
        escalates to now, as the supervisor does with its own signals."""
        self._signals += 1
        if self._signals == 1:
            self.drain(f"{name} received")
        else:
            self.now(f"second {name} received")

    def supervisor_lost(self, how: str) -> None:
        self.lost = True
        self.now(f"supervisor lost ({how})")

    def _set(self, key: str | None, mode: StopMode, reason: str) -> None:
        self._mode[key] = mode
        self._why.setdefault(key, reason)  # a drain's reason stays when it escalates
        log.info(
            "stop_drain" if mode is StopMode.DRAIN else "stop_now",
            reason=reason,
            **({"strategy_id": key} if key else {}),
            **({"grace_seconds": self._grace.get(key, 0.0)} if mode is StopMode.DRAIN else {}),
        )
        target = Phase.DRAINING if mode is StopMode.DRAIN else Phase.STOPPING
        keys = [key] if key is not None else list(self._phase)
        for k in keys:
            if k in self._phase and target in EDGES[self._phase[k]]:
                self.to(target, reason, strategy=k)
        self._bump(key)

    async def _grace_timer(self, key: str | None) -> None:
        start = self.clock.monotonic()
        while self.mode(key) is StopMode.DRAIN:
            left = start + self._grace.get(key, self._grace[None]) - self.clock.monotonic()
            if left <= 0:
                self.now("drain took longer than stop_grace_seconds", strategy=key)
                return
            await self.wait(key, StopMode.NOW, left, wake_on_change=True)

    def event(self, strategy: str | None, mode: StopMode) -> asyncio.Event:
        """Set once a stop of at least ``mode`` applies to ``strategy`` (None: the process)."""
        ev = self._events.get((strategy, mode))
        if ev is None:
            ev = self._events[(strategy, mode)] = asyncio.Event()
            if self.mode(strategy) >= mode:
                ev.set()
        return ev

    def _bump(self, key: str | None) -> None:
        for (k, m), ev in self._events.items():
            if (key is None or k == key) and self.mode(k) >= m:
                ev.set()
        self._announce()

    def _announce(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(
        self, strategy: str | None, mode: StopMode, seconds: float, *, wake_on_change: bool = False
    ) -> bool:
        """Wait up to ``seconds`` for a stop of at least ``mode``; True if one came. (For
        the stop's own machinery and for waits that finish whatever comes: code that
        trades uses the waits below, which raise.)"""
        ev = self.event(strategy, mode)
        if not ev.is_set() and seconds > 0:
            await first_of(ev, self._changed if wake_on_change else None, seconds)
        return ev.is_set()

    async def sleep(self, seconds: float, strategy: str | None = None) -> None:
        """Sleep up to ``seconds``; ``StopRequested`` (at once) if a stop applies meanwhile."""
        await self.wait(strategy, StopMode.DRAIN, seconds)
        self.check(strategy)

    async def sleep_unless_now(
        self, seconds: float, strategy: str | None = None, *, doing: str = "waiting"
    ) -> None:
        """For waits the exchange imposes (Retry-After, retry backoff): a drain still
        honours them; "now" cuts them short with ``StopRequested`` (reason: the stop's,
        and what was ``doing``)."""
        if await self.wait(strategy, StopMode.NOW, seconds):
            log.info("wait_interrupted", doing=doing, seconds=seconds)
            why = self.reason(strategy) or "stop now"
            raise StopRequested(f"{why} (while {doing})")

    async def until(self, ev: asyncio.Event, seconds: float, strategy: str | None = None) -> bool:
        """Wait up to ``seconds`` for ``ev``: True once it is set, False after the time;
        ``StopRequested`` if a stop comes first (and ``ev`` is not set)."""
        await first_of(ev, self.event(strategy, StopMode.DRAIN), seconds)
        if ev.is_set():
            return True
        self.check(strategy)
        return False
