"""The two ways to stop, as flags that signal handlers and commands can set cheaply.

* drain: finish the round trip in progress, then exit; if that takes longer than
  ``stop_grace_seconds`` it turns into "now".
* now: cancel open orders, sell leftovers, exit.

Handlers only set events (as in gunicorn's arbiter); the trading code wakes on them.
"""

from __future__ import annotations

import asyncio

import structlog

from exchange.clock import SYSTEM_CLOCK, Clock
from protocol.exitcodes import Exit

log = structlog.get_logger(__name__)


class StopControl:
    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.drain_event = asyncio.Event()
        self.now_event = asyncio.Event()
        self.any_event = asyncio.Event()  # set by either: "stop buying"
        self.reason: str | None = None
        self.exit: Exit | None = None  # exit status forced by the stop (e.g. SUPERVISOR_LOST)
        self._grace_seconds = 30.0
        self._grace_changed: asyncio.Event | None = None
        self._grace_task: asyncio.Task | None = None

    @property
    def grace_seconds(self) -> float:
        return self._grace_seconds

    @grace_seconds.setter
    def grace_seconds(self, seconds: float) -> None:
        """The running strategy's ``stop_grace_seconds``; a drain already under way keeps
        its start time and ends at start + the new grace."""
        self._grace_seconds = seconds
        if self._grace_changed is not None:
            self._grace_changed.set()

    @property
    def requested(self) -> bool:
        return self.any_event.is_set()

    @property
    def is_now(self) -> bool:
        return self.now_event.is_set()

    def drain(self, reason: str = "drain requested") -> None:
        if self.any_event.is_set():
            if self.drain_event.is_set() and not self.now_event.is_set():
                self.now("second stop request")  # second signal = now
            return
        log.info("stop_drain", reason=reason, grace_seconds=self.grace_seconds)
        self.reason = reason
        self.drain_event.set()
        self.any_event.set()
        try:
            self._grace_task = asyncio.get_running_loop().create_task(self._grace())
        except RuntimeError:  # no loop (called from a plain thread): no grace timer
            pass

    async def _grace(self) -> None:
        self._grace_changed = changed = asyncio.Event()
        start = self.clock.monotonic()
        while True:
            left = start + self._grace_seconds - self.clock.monotonic()
            if left <= 0:
                break
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), timeout=left)
            except TimeoutError:
                pass
        if not self.now_event.is_set():
            self.now("drain took longer than stop_grace_seconds")

    def now(self, reason: str = "stop now requested", exit: Exit | None = None) -> None:
        if exit is not None and self.exit is None:
            self.exit = exit
        if self.now_event.is_set():
            return
        log.info("stop_now", reason=reason)
        if self.reason is None or not self.drain_event.is_set():
            self.reason = reason
        self.now_event.set()
        self.any_event.set()

    def cancel_timers(self) -> None:
        if self._grace_task is not None:
            self._grace_task.cancel()

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; returns True if a stop was requested meanwhile."""
        if self.any_event.is_set():
            return True
        if seconds <= 0:
            return False
        try:
            await asyncio.wait_for(self.any_event.wait(), timeout=seconds)
            return True
        except TimeoutError:
            return False

    async def sleep_unless_now(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` unless a stop "now" comes (a drain turns into one when
        its grace runs out); returns True if "now" was requested. For waits the exchange
        imposes (Retry-After, retry backoff): a drain still honours them, "now" does not."""
        if self.now_event.is_set():
            return True
        if seconds <= 0:
            return False
        try:
            await asyncio.wait_for(self.now_event.wait(), timeout=seconds)
            return True
        except TimeoutError:
            return False
