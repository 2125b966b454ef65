"""The per-user SQLite journal: what this process meant to do and what became of it.

Write-ahead discipline: the intent row of an order is committed *before* the POST that
places it, the exchange's ids right after the answer, the fills and the outcome when the
trade ends. So after a ``kill -9`` at any instant the next start finds every order that
may exist (``open_trades``) and reconciles it with the exchange instead of guessing;
nothing is placed twice and no fill is forgotten. Every commit survives the process (WAL);
the intent's also survives the machine (``synchronous=FULL``: fsynced, with everything
before it), the others need no fsync of their own (``NORMAL``): losing one to a power cut
only means the next start asks the exchange again (ids are looked up, a trade is finished
again from its fills, an order the journal lost is adopted), never a second order.

Money is stored as decimal strings (never floats); days are UTC dates (YYYY-MM-DD).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from config.logsetup import redact
from userproc.errors import JournalUnreadable, JournalUnusable
from userproc.outcome import Outcome

SCHEMA = """
CREATE TABLE IF NOT EXISTS trades (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id INTEGER,            -- for kind='sell': the round trip whose tokens it sells
    kind TEXT NOT NULL,           -- 'oto' (a round trip) | 'sell' (plain limit sell of leftovers)
                                  -- | 'sweep' (selling the dust many round trips left)
    strategy_id TEXT NOT NULL,
    day TEXT NOT NULL,            -- UTC day of the intent
    symbol TEXT NOT NULL,         -- ALPHA_22USDT
    base_asset TEXT NOT NULL,     -- ALPHA_22
    token TEXT NOT NULL,          -- KOGE
    buy_price TEXT,               -- limit prices and quantity as sent
    sell_price TEXT,
    qty TEXT NOT NULL,
    amount TEXT,                  -- USDT paid for the buy (paymentDetails amount)
    intent_ms INTEGER NOT NULL,
    placed INTEGER NOT NULL DEFAULT 0,   -- 0 unknown (intent only), 1 placed, -1 not placed
    working_id TEXT,              -- the OTO's buy id (or the plain sell's id)
    pending_id TEXT,              -- the OTO's sell id
    buy_qty TEXT, buy_quote TEXT, buy_fee_usdt TEXT,
    sell_qty TEXT, sell_quote TEXT, sell_fee_usdt TEXT,
    cost TEXT,
    outcome TEXT,                 -- NULL while unfinished
    note TEXT,
    finished_ms INTEGER,
    dust TEXT                     -- tokens this round trip left that were too few to sell
);
CREATE INDEX IF NOT EXISTS trades_open ON trades(outcome);
CREATE INDEX IF NOT EXISTS trades_parent ON trades(parent_id);
CREATE INDEX IF NOT EXISTS trades_day ON trades(day);
"""


@dataclass(frozen=True)
class TradeRow:
    id: int
    parent_id: int | None
    kind: str
    strategy_id: str
    day: str
    symbol: str
    base_asset: str
    token: str
    buy_price: Decimal | None
    sell_price: Decimal | None
    qty: Decimal
    amount: Decimal | None
    intent_ms: int
    placed: int
    working_id: str | None
    pending_id: str | None
    outcome: str | None  # an ``Outcome``'s value as stored (None while unfinished)


def _d(v: str | None) -> Decimal | None:
    return None if v is None else Decimal(v)


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


CACHE_KIB = 128  # SQLite page cache per journal (the default is 2000 KiB)

# Initialise the SQLite library at import: the fork server's template imports this
# module, so the library's own allocations are made once and shared by every user
# process instead of copied into each (no connection is kept across the fork).
sqlite3.connect(":memory:").close()


class JournalBusy(RuntimeError):
    """Another live process holds this user's journal: two processes trading one account
    would place every order twice."""


def lock_user(path: str | Path) -> int:
    """An exclusive lock next to the journal, held for the life of the process (the
    kernel drops it when the process dies, even by SIGKILL). Returns the lock's fd."""
    p = Path(str(path) + ".lock")
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalBusy(f"another process is already running this user ({p.name})") from None
    return fd


# SQLite's (primary) result codes that say the file itself is not a sound journal; any
# other (SQLITE_FULL, SQLITE_IOERR, SQLITE_BUSY ...) is about the disk or another program
DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


def _unopened(p: Path, exc: sqlite3.DatabaseError) -> JournalUnreadable | JournalUnusable:
    """Why the journal at ``p`` could not be opened, by SQLite's result code."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None or code & 0xFF in DAMAGED:  # extended codes keep the primary's low byte
        return JournalUnreadable(
            f"the journal {p} cannot be read ({exc}): move it aside and start the user"
            " again; the next start adopts what it finds open on the exchange"
        )
    name = getattr(exc, "sqlite_errorname", str(code))
    return JournalUnusable(
        f"the journal {p} cannot be used now ({name}: {exc}): free disk space or end what"
        " holds the file; nothing is traded without it, and the user is restarted"
    )


class Journal:
    """One SQLite file per user; every method commits before it returns."""

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(str(p), isolation_level=None)  # autocommit per statement
        self._costs: dict[str, Decimal] = {}  # day -> cost of what finished that day
        try:
            # a small page cache, set before the first page is read: the file keeps every
            # day's trades, the hot part is the last pages and the indexes
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(trades)")}
            if "dust" not in columns:  # a journal from before the dust ledger
                self._db.execute("ALTER TABLE trades ADD COLUMN dust TEXT")
            self._db.execute("SELECT COUNT(*) FROM trades WHERE outcome IS NULL").fetchone()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise _unopened(p, exc) from None

    def close(self) -> None:
        self._db.close()

    # ----------------------------------------------------------------- writes
    def record_intent(
        self,
        *,
        kind: str,
        strategy_id: str,
        day: str,
        symbol: str,
        base_asset: str,
        token: str,
        qty: Decimal,
        intent_ms: int,
        buy_price: Decimal | None = None,
        sell_price: Decimal | None = None,
        amount: Decimal | None = None,
        parent_id: int | None = None,
    ) -> int:
        self._db.execute("PRAGMA synchronous=FULL")  # this commit is fsynced
        cur = self._db.execute(
            "INSERT INTO trades (parent_id, kind, strategy_id, day, symbol, base_asset, token,"
            " buy_price, sell_price, qty, amount, intent_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                parent_id,
                kind,
                strategy_id,
                day,
                symbol,
                base_asset,
                token,
                _s(buy_price),
                _s(sell_price),
                str(qty),
                _s(amount),
                intent_ms,
            ),
        )
        self._db.execute("PRAGMA synchronous=NORMAL")
        return int(cur.lastrowid or 0)

    def record_ids(self, trade_id: int, working_id: str, pending_id: str | None = None) -> None:
        self._db.execute(
            "UPDATE trades SET placed=1, working_id=?, pending_id=? WHERE id=?",
            (working_id, pending_id, trade_id),
        )

    def record_not_placed(
        self, trade_id: int, outcome: Outcome, now_ms: int, note: str = ""
    ) -> None:
        """The POST certainly placed nothing (refused, or looked up and not found).
        ``note`` (often an exchange error's text) is redacted before it is stored."""
        self._db.execute(
            "UPDATE trades SET placed=-1, outcome=?, note=?, finished_ms=? WHERE id=?",
            (str(outcome), redact(note)[:500], now_ms, trade_id),
        )

    def record_fills(
        self,
        trade_id: int,
        *,
        buy_qty: Decimal | None = None,
        buy_quote: Decimal | None = None,
        buy_fee_usdt: Decimal | None = None,
        sell_qty: Decimal | None = None,
        sell_quote: Decimal | None = None,
        sell_fee_usdt: Decimal | None = None,
    ) -> None:
        self._db.execute(
            "UPDATE trades SET buy_qty=?, buy_quote=?, buy_fee_usdt=?, sell_qty=?,"
            " sell_quote=?, sell_fee_usdt=? WHERE id=?",
            (
                _s(buy_qty),
                _s(buy_quote),
                _s(buy_fee_usdt),
                _s(sell_qty),
                _s(sell_quote),
                _s(sell_fee_usdt),
                trade_id,
            ),
        )

    def finish(
        self,
        trade_id: int,
        outcome: Outcome,
        now_ms: int,
        *,
        cost: Decimal | None = None,
        dust: Decimal | None = None,
    ) -> None:
        if cost is not None:  # keep the day's running total (cost_on) right
            day, old = self._db.execute(
                "SELECT day, cost FROM trades WHERE id=?", (trade_id,)
            ).fetchone()
            if day in self._costs:
                self._costs[day] += cost - (Decimal(old) if old is not None else Decimal(0))
        self._db.execute(
            "UPDATE trades SET outcome=?, cost=?, finished_ms=?, dust=? WHERE id=?",
            (str(outcome), _s(cost), now_ms, _s(dust), trade_id),
        )

    def dust(self, token: str) -> Decimal:
        """Tokens of ``token`` that round trips left as dust, minus what sweeps sold."""
        left = self._db.execute(
            "SELECT dust FROM trades WHERE token=? AND kind='oto' AND dust IS NOT NULL", (token,)
        ).fetchall()
        sold = self._db.execute(
            "SELECT s.sell_qty FROM trades s JOIN trades p ON s.parent_id = p.id"
            " WHERE p.kind='sweep' AND p.token=? AND s.sell_qty IS NOT NULL",
            (token,),
        ).fetchall()
        total = sum((Decimal(d) for (d,) in left), Decimal(0))
        return total - sum((Decimal(q) for (q,) in sold), Decimal(0))

    # ----------------------------------------------------------------- reads
    def _rows(self, where: str, args: tuple[object, ...] = ()) -> list[TradeRow]:
        cur = self._db.execute(
            "SELECT id, parent_id, kind, strategy_id, day, symbol, base_asset, token, buy_price,"
            " sell_price, qty, amount, intent_ms, placed, working_id, pending_id, outcome"
            f" FROM trades WHERE {where} ORDER BY id",
            args,
        )
        return [
            TradeRow(
                id=r[0],
                parent_id=r[1],
                kind=r[2],
                strategy_id=r[3],
                day=r[4],
                symbol=r[5],
                base_asset=r[6],
                token=r[7],
                buy_price=_d(r[8]),
                sell_price=_d(r[9]),
                qty=Decimal(r[10]),
                amount=_d(r[11]),
                intent_ms=r[12],
                placed=r[13],
                working_id=r[14],
                pending_id=r[15],
                outcome=r[16],
            )
            for r in cur.fetchall()
        ]

    def open_trades(self) -> list[TradeRow]:
        """Trades without an outcome: orders that may still exist on the exchange."""
        return self._rows("outcome IS NULL")

    def get(self, trade_id: int) -> TradeRow:
        rows = self._rows("id=?", (trade_id,))
        if not rows:
            raise KeyError(trade_id)
        return rows[0]

    def children(self, trade_id: int) -> list[TradeRow]:
        return self._rows("parent_id=?", (trade_id,))

    def known_order_ids(self) -> set[str]:
        cur = self._db.execute(
            "SELECT working_id, pending_id FROM trades WHERE working_id IS NOT NULL"
        )
        out: set[str] = set()
        for w, p in cur.fetchall():
            out.add(w)
            if p:
                out.add(p)
        return out

    def cost_on(self, day: str) -> Decimal:
        """Total cost (USDT) of everything finished on this UTC day: summed from the file
        once, then kept up to date by ``finish`` (it is asked before every trade)."""
        total = self._costs.get(day)
        if total is None:
            cur = self._db.execute(
                "SELECT cost FROM trades WHERE day=? AND cost IS NOT NULL", (day,)
            )
            total = self._costs[day] = sum((Decimal(c) for (c,) in cur.fetchall()), Decimal(0))
        return total

    def trades_on(self, day: str, strategy_id: str | None = None) -> int:
        """Completed round trips of that day (for the summary)."""
        q = "SELECT COUNT(*) FROM trades WHERE kind='oto' AND day=? AND outcome=?"
        args: tuple[str, ...] = (day, Outcome.DONE.value)
        if strategy_id is not None:
            q += " AND strategy_id=?"
            args = (*args, strategy_id)
        return int(self._db.execute(q, args).fetchone()[0])


# ----------------------------------------------------------------- read-only, for the books
@dataclass(frozen=True)
class DayTotals:
    """One UTC day and token of a journal (``alphavol history``, the daily summary, and
    the supervisor's figures of today); ``strategy_id`` only when asked ``by_strategy``."""

    day: str
    token: str
    round_trips: int  # OTOs the exchange accepted (placed), filled or not
    bought_usdt: Decimal  # USDT their buys paid
    cost_usdt: Decimal  # what the account lost: round trips, their leftover sells, dust sweeps
    strategy_id: str | None = None


def day_totals(path: str | Path, *, since: str = "", by_strategy: bool = False) -> list[DayTotals]:
    """Per UTC day (from ``since``, YYYY-MM-DD) and token (and strategy, ``by_strategy``),
    from the journal at ``path``, opened read-only (never created, locked or written; a
    running process may be writing it). Empty when the file does not exist."""
    p = Path(path)
    if not p.exists():
        return []
    db = sqlite3.connect(p.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT day, token, strategy_id, kind, placed, buy_quote, cost FROM trades"
            " WHERE day >= ? AND kind IN ('oto', 'sweep') ORDER BY day, token",
            (since,),
        ).fetchall()
    finally:
        db.close()
    acc: dict[tuple[str, str, str | None], list] = {}
    for day, token, sid, kind, placed, buy_quote, cost in rows:
        t = acc.setdefault((day, token, sid if by_strategy else None), [0, Decimal(0), Decimal(0)])
        if kind == "oto" and placed == 1:
            t[0] += 1
            t[1] += Decimal(buy_quote or 0)
        t[2] += Decimal(cost or 0)
    return [DayTotals(d, tok, n, b, c, sid) for (d, tok, sid), (n, b, c) in acc.items()]
