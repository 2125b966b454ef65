"""The volumes the exchange reported, per user, UTC day and token, as the supervisor
learned them (``data_dir/books.sqlite``).

The journals say what each account traded and what it cost; they do not say what the
exchange credited. The user processes report it (``VolumeChecked``: today's reported
volume of the token, already multiplied) after every batch; the supervisor keeps the last
reading of each day here, so that ``alphavol history`` can show a past day's credited
volume as the exchange reported it at the end of that day (today's it asks the exchange
for, when it can).

Readings are noted in memory on the event loop and written by ``flush`` (one
transaction, from a worker thread): the loop never waits for the disk.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS volumes (
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,          -- UTC, YYYY-MM-DD
    token TEXT NOT NULL,        -- plain symbol, KOGE
    volume TEXT NOT NULL,       -- reported (multiplied), a decimal string
    at_ms INTEGER NOT NULL,     -- when it was read
    PRIMARY KEY (user_id, day, token)
);
"""

Key = tuple[str, str, str]  # user id, day, token


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).date().isoformat()


def book_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "books.sqlite"


class VolumeBook:
    """The supervisor's side: ``note`` (loop), ``flush`` (a thread), ``close``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._pending: dict[Key, tuple[Decimal, int]] = {}
        self._lock = threading.Lock()

    def note(self, user_id: str, token: str, volume: Decimal, at: float) -> None:
        """A reading of today's reported volume of ``token`` taken at ``at`` (epoch s)."""
        if not volume.is_finite() or volume < 0:
            return
        key = (user_id, utc_day(at), token)
        ms = int(at * 1000)
        with self._lock:
            old = self._pending.get(key)
            if old is None or old[1] <= ms:
                self._pending[key] = (volume, ms)

    def flush(self) -> int:
        """Write what was noted since the last flush; returns how many readings."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = sqlite3.connect(str(self.path), isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO volumes (user_id, day, token, volume, at_ms) VALUES (?,?,?,?,?)"
                " ON CONFLICT (user_id, day, token) DO UPDATE SET volume=excluded.volume,"
                " at_ms=excluded.at_ms WHERE excluded.at_ms >= volumes.at_ms",
                [(u, d, t, str(v), ms) for (u, d, t), (v, ms) in pending.items()],
            )
            db.execute("COMMIT")
        finally:
            db.close()
        return len(pending)

    def pending(self) -> dict[Key, Decimal]:
        with self._lock:
            return {k: v for k, (v, _ms) in self._pending.items()}


def read_volumes(
    path: str | Path, *, since: str = "", user_id: str | None = None
) -> dict[tuple[str, str, str], Decimal]:
    """{(user, day, token): volume} written so far (read-only; empty without a file)."""
    p = Path(path)
    if not p.exists():
        return {}
    db = sqlite3.connect(p.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        q = "SELECT user_id, day, token, volume FROM volumes WHERE day >= ?"
        args: tuple = (since,)
        if user_id is not None:
            q += " AND user_id = ?"
            args = (since, user_id)
        if (
            db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='volumes'"
            ).fetchone()
            is None
        ):
            return {}  # created but never written (a locked or broken file raises, named)
        rows = db.execute(q, args).fetchall()
    finally:
        db.close()
    return {(u, d, t): Decimal(v) for u, d, t, v in rows}
