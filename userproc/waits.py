"""The one "first of two events, with a timeout" wait of the user process."""

from __future__ import annotations

import asyncio


async def first_of(a: asyncio.Event, b: asyncio.Event | None, within: float) -> None:
    """Return once ``a`` or ``b`` is set, or after ``within`` seconds, whichever comes
    first (``b`` None: ``a`` alone). Already set: at once. The caller reads which."""
    if a.is_set() or (b is not None and b.is_set()) or within <= 0:
        return
    waits = [asyncio.ensure_future(a.wait())]
    if b is not None:
        waits.append(asyncio.ensure_future(b.wait()))
    try:
        await asyncio.wait(waits, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
