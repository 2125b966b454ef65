"""The UTC day the supervisor works, and when the next one starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def next_run_time(day: str, offset_seconds: float) -> float:
    """The UTC midnight after ``day`` (ISO date) + offset, as epoch seconds. From the day
    being worked, not from now: a day whose work ran past midnight must not skip the next."""
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return (start + timedelta(days=1)).timestamp() + offset_seconds


def fmt_utc(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
