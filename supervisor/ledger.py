"""The books: per user, UTC day and token, what the round trips did and what they cost.

Figures and where each comes from:

* ``round_trips``, ``bought_usdt``, ``cost_usdt``: the user's journal
  (``userproc.journal.day_totals``): OTOs the exchange accepted, the USDT their buys paid,
  and what the account lost by its fills (paid - received + USDT fees, over round trips,
  their leftover sells and dust sweeps).
* ``credited_volume``: the token's volume as the exchange reported it (multiplied by its
  mulPoint): today's asked from the exchange now when possible, else (and for past days)
  the supervisor's last reading of that day (``supervisor.volume_book``).
* ``points``: floor(log2(credited volume)) (``exchange.points.volume_points``); a day with
  two tokens earns the points of their sum, which ``days`` computes.
* ``exchange_points``/``exchange_volume``: the day's alphaVolumeScore and alphaVolume as
  the exchange's own ``user-score`` computed them (closed days only; all tokens).

Points are summed over the last 15 UTC days (``SCORE_WINDOW_DAYS``), the window the
exchange sums them over.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from config.logsetup import redact
from exchange.points import SCORE_WINDOW_DAYS, volume_points
from supervisor.volume_book import book_path, read_volumes
from userproc.journal import DayTotals, day_totals

EIGHT = Decimal("0.00000001")
ZERO = Decimal(0)


def per_point(cost: Decimal, points: int | None) -> Decimal | None:
    if not points:
        return None
    return (cost / points).quantize(EIGHT, rounding=ROUND_HALF_EVEN)


class _Points:
    """Points of the credited volume, and what each cost."""

    credited_volume: Decimal | None
    cost_usdt: Decimal

    @property
    def points(self) -> int | None:
        return None if self.credited_volume is None else volume_points(self.credited_volume)

    @property
    def cost_per_point(self) -> Decimal | None:
        return per_point(self.cost_usdt, self.points)


@dataclass
class LedgerRow(_Points):
    user_id: str
    day: str
    token: str
    round_trips: int
    bought_usdt: Decimal
    credited_volume: Decimal | None
    cost_usdt: Decimal
    volume_from: str | None = None  # "exchange" (asked now) | "recorded" | None (unknown)
    exchange_points: int | None = None
    exchange_volume: Decimal | None = None

    def as_json(self) -> dict[str, Any]:
        def s(d: Decimal | None) -> str | None:
            return None if d is None else format(d, "f")

        return {
            "user_id": self.user_id,
            "day": self.day,
            "token": self.token,
            "round_trips": self.round_trips,
            "bought_usdt": s(self.bought_usdt),
            "credited_volume": s(self.credited_volume),
            "points": self.points,
            "cost_usdt": s(self.cost_usdt),
            "cost_per_point": s(self.cost_per_point),
            "volume_from": self.volume_from,
            "exchange_points": self.exchange_points,
            "exchange_volume": s(self.exchange_volume),
        }


@dataclass
class DayTotal(_Points):
    """One user's UTC day, all tokens: points of the day's total credited volume."""

    user_id: str
    day: str
    round_trips: int = 0
    bought_usdt: Decimal = ZERO
    credited_volume: Decimal | None = ZERO
    cost_usdt: Decimal = ZERO
    exchange_points: int | None = None
    tokens: list[str] = field(default_factory=list)


@dataclass
class ExchangeView:
    """What the exchange said when asked: today's volumes and the user-score days."""

    today: dict[str, Any] = field(default_factory=dict)  # user -> exchange.models.UserVolume
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # user -> day -> ScoreDay
    notes: list[str] = field(default_factory=list)  # what could not be asked, redacted


def window_start(today: date, days: int) -> str:
    return (today - timedelta(days=max(1, days) - 1)).isoformat()


def journal_users(data_dir: str | Path) -> list[str]:
    """Users that have a journal under ``data_dir`` (configured or not any more)."""
    found = Path(data_dir, "journals").glob("user-*.sqlite")
    return sorted((p.name[len("user-") : -len(".sqlite")] for p in found), key=_user_order)


def _user_order(uid: str) -> tuple[int, str]:
    return (0, f"{int(uid):020d}") if uid.isdigit() else (1, uid)


def build(
    data_dir: str | Path,
    *,
    today: date,
    days: int = SCORE_WINDOW_DAYS,
    users: Iterable[str] | None = None,
    exchange: ExchangeView | None = None,
    recorded: dict[tuple[str, str, str], Decimal] | None = None,
    totals: dict[str, list[Any]] | None = None,
) -> list[LedgerRow]:
    """The rows of the last ``days`` UTC days up to ``today``, per user, day and token
    (``recorded``: the volume readings of books.sqlite, when already read; ``totals``: each
    user's ``DayTotals`` from a pool's shared books, else its journal)."""

    since = window_start(today, days)
    exchange = exchange or ExchangeView()
    if recorded is None:
        recorded = read_volumes(book_path(data_dir), since=since)
    out: list[LedgerRow] = []
    for uid in users if users is not None else journal_users(data_dir):
        path = journal_path(data_dir, uid)
        scores = exchange.scores.get(uid, {})
        for t in totals.get(uid, []) if totals is not None else day_totals(path, since=since):
            if t.day > today.isoformat():
                continue
            now = exchange.today.get(uid) if t.day == today.isoformat() else None
            volume, source = None, None
            if now is not None:
                volume, source = now.volume_of(t.token), "exchange"
            elif (uid, t.day, t.token) in recorded:
                volume, source = recorded[(uid, t.day, t.token)], "recorded"
            score = scores.get(t.day)
            out.append(
                LedgerRow(
                    user_id=uid,
                    day=t.day,
                    token=t.token,
                    round_trips=t.round_trips,
                    bought_usdt=t.bought_usdt,
                    credited_volume=volume,
                    cost_usdt=t.cost_usdt,
                    volume_from=source,
                    exchange_points=_int(getattr(score, "alpha_volume_score", None)),
                    exchange_volume=getattr(score, "alpha_volume", None),
                )
            )
    return out


def _int(d: Decimal | None) -> int | None:
    return None if d is None else int(d)


def day_totals_of(rows: Iterable[LedgerRow]) -> list[DayTotal]:
    """Per user and day (in the order the rows came), all tokens summed."""
    out: dict[tuple[str, str], DayTotal] = {}
    for r in rows:
        t = out.setdefault((r.user_id, r.day), DayTotal(r.user_id, r.day))
        t.round_trips += r.round_trips
        t.bought_usdt += r.bought_usdt
        t.cost_usdt += r.cost_usdt
        t.tokens.append(r.token)
        if t.credited_volume is not None:
            t.credited_volume = (
                None if r.credited_volume is None else t.credited_volume + r.credited_volume
            )
        t.exchange_points = r.exchange_points
    return list(out.values())


@dataclass
class WindowTotal:
    user_id: str
    round_trips: int = 0
    bought_usdt: Decimal = ZERO
    cost_usdt: Decimal = ZERO
    points: int = 0
    exchange_points: int | None = None

    @property
    def cost_per_point(self) -> Decimal | None:
        return per_point(self.cost_usdt, self.points)


def window_totals(rows: Iterable[LedgerRow]) -> list[WindowTotal]:
    """Per user over the rows' days: the sum of each day's points (not of each token's)."""
    out: dict[str, WindowTotal] = {}
    for d in day_totals_of(rows):
        w = out.setdefault(d.user_id, WindowTotal(d.user_id))
        w.round_trips += d.round_trips
        w.bought_usdt += d.bought_usdt
        w.cost_usdt += d.cost_usdt
        w.points += d.points or 0
        if d.exchange_points is not None:
            w.exchange_points = (w.exchange_points or 0) + d.exchange_points
    return list(out.values())


@dataclass
class UserDay:
    """One user's UTC day as ``history`` shows it (``total``: every token's round trips,
    cost, points and cost per point) and each strategy's share of the round trips and cost
    (``by_strategy``: strategy id -> (round trips, cost USDT))."""

    total: DayTotal
    by_strategy: dict[str, tuple[int, Decimal]] = field(default_factory=dict)


def journal_path(data_dir: str | Path, user_id: str) -> Path:
    return Path(data_dir, "journals", f"user-{user_id}.sqlite")


def user_days(
    data_dir: str | Path,
    *,
    day: date,
    users: Iterable[str],
    others: dict[str, list[DayTotals]] | None = None,
) -> dict[str, UserDay]:
    """``history``'s figures of ``day`` (offline: the volumes recorded in books.sqlite) for
    each user whose journal can be read; one without a journal (and nothing in ``others``),
    or with one that is not a journal, is left out. ``others``: on a node of a pool, what
    the other nodes traded of each user that day (``pool.books.other_nodes_day``, per token
    and strategy). What the supervisor shows today comes from here."""

    out: dict[str, UserDay] = {}
    when = day.isoformat()
    recorded = read_volumes(book_path(data_dir), since=when)
    for uid in users:
        path = journal_path(data_dir, uid)
        theirs = (others or {}).get(uid, [])
        if not path.exists() and not theirs:
            continue
        try:
            shares = [t for t in day_totals(path, since=when, by_strategy=True) if t.day == when]
        except sqlite3.DatabaseError:
            continue
        shares += theirs
        rows = build(
            data_dir,
            today=day,
            days=1,
            users=[uid],
            recorded=recorded,
            totals={uid: _by_token(shares)},
        )
        totals = day_totals_of(rows)
        user = UserDay(totals[0] if totals else DayTotal(uid, when, credited_volume=None))
        for t in shares:
            if t.strategy_id is not None:
                n, c = user.by_strategy.get(t.strategy_id, (0, ZERO))
                user.by_strategy[t.strategy_id] = (n + t.round_trips, c + t.cost_usdt)
        out[uid] = user
    return out


def _by_token(shares: list[DayTotals]) -> list[DayTotals]:
    """Per (day, token) sums of per-strategy totals, in (day, token) order."""
    acc: dict[tuple[str, str], list[Any]] = {}
    for t in shares:
        a = acc.setdefault((t.day, t.token), [0, ZERO, ZERO])
        a[0] += t.round_trips
        a[1] += t.bought_usdt
        a[2] += t.cost_usdt
    return [DayTotals(d, tok, n, b, c) for (d, tok), (n, b, c) in sorted(acc.items())]


async def ask_exchange(
    users: Iterable[str],
    credentials_for: Callable[[str], Any],
    exchange: Any,  # config.settings.ExchangeSettings
    *,
    volumes: bool = True,
    concurrency: int = 8,
) -> ExchangeView:
    """Today's volume per token and the ``user-score`` days of each user, asked
    concurrently; a user that cannot be asked gets a note (redacted), never an error."""
    from exchange.client import AlphaClient

    view = ExchangeView()
    sem = asyncio.Semaphore(max(1, concurrency))

    async def one(uid: str) -> None:
        async with sem:
            try:
                creds = credentials_for(uid)
            except Exception as exc:  # no stored session: offline for this user
                view.notes.append(redact(f"user {uid}: {exc}"))
                return
            async with AlphaClient(
                base_url=exchange.base_url,
                credentials=creds,
                request_timeout=exchange.request_timeout_seconds,
            ) as client:
                if volumes:
                    try:
                        view.today[uid] = await client.user_volume()
                    except Exception as exc:
                        view.notes.append(redact(f"user {uid}: user-volume: {_why(exc)}"))
                try:
                    score = await client.user_score()
                    view.scores[uid] = {d.date: d for d in score.days}
                except Exception as exc:
                    view.notes.append(redact(f"user {uid}: user-score: {_why(exc)}"))

    await asyncio.gather(*(one(u) for u in users))
    return view


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
