"""The one injectable clock.

Everything that reads the time or sleeps takes a ``Clock``: the real one in production,
an offset or fast one in tests and in the simulator, so nothing waits on wall time that it
does not have to.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime


class Clock:
    """Wall time (epoch seconds), monotonic time and sleeping, from one place."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    # Derived helpers: always go through time() so an offset clock moves them too.
    def now_ms(self) -> int:
        return int(self.time() * 1000)

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.time(), tz=UTC)

    def utc_day(self) -> date:
        """The UTC day that Binance's volume counts in."""
        return self.utcnow().date()


class OffsetClock(Clock):
    """The system clock shifted by a settable offset (seconds); used by the simulator to
    jump to just before a UTC midnight, and by tests."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset


SYSTEM_CLOCK = Clock()
