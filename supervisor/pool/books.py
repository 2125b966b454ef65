"""The books of a pool (issue 22): every node copies its users' finished round trips from
their journals (host-local crash-recovery files) into the store's ``books`` table, one
row per order, by order id (copying again is the same row); ``alphavol history`` on any
node then totals a user's day from there, whichever nodes traded it.

The totals are the journals' own (``userproc.journal.day_totals``: round trips placed,
USDT bought, cost of round trips and dust sweeps), so ``supervisor.ledger.build`` gets the
same ``DayTotals`` from either source.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from config.store_section import StoreSettings
from supervisor.ledger import journal_path
from userproc.journal import DayTotals


def journal_rows(
    uid: str, path: Path, since: str
) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(order id, day, token, strategy, row) of the journal's finished round trips and
    sweeps; read-only (a running process may be writing it)."""
    db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT id, kind, strategy_id, day, token, placed, buy_quote, cost, working_id,"
            " intent_ms FROM trades WHERE day >= ? AND kind IN ('oto', 'sweep')"
            " AND outcome IS NOT NULL",
            (since,),
        ).fetchall()
    finally:
        db.close()
    out = []
    for _id, kind, sid, day, token, placed, buy_quote, cost, working_id, intent_ms in rows:
        # an OTO by its buy's exchange id; a sweep (or an OTO never placed) by its intent
        key = working_id if kind == "oto" and working_id else f"{uid}:{kind}:{intent_ms}"
        row = {"kind": kind, "placed": placed, "buy_quote": buy_quote, "cost": cost}
        out.append((key, day, token, sid, row))
    return out


def new_rows(node: str, data_dir: str, since: str, copied: set[str]) -> list[tuple[str, tuple]]:
    """(order id, insert parameters) of the finished rows of every journal not yet in
    ``copied`` (the order ids this node has copied)."""
    out = []
    for path in sorted(Path(data_dir, "journals").glob("user-*.sqlite")):
        uid = path.name[len("user-") : -len(".sqlite")]
        try:
            rows = journal_rows(uid, path, since)
        except sqlite3.Error:  # being created: next time
            continue
        for order_id, day, token, sid, row in rows:
            if order_id not in copied:
                out.append((order_id, (order_id, uid, sid, day, token, node, json.dumps(row))))
    return out


async def copy_journals(conn: Any, node: str, data_dir: str, since: str, copied: set[str]) -> int:
    """Copy what this node's journals finished since the last call (read in a thread)."""
    import asyncio

    rows = await asyncio.to_thread(new_rows, node, data_dir, since, copied)
    if rows:
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO books (order_id, user_id, strategy_id, day, token, node, row)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (order_id) DO NOTHING",
                [params for _, params in rows],
            )
        copied.update(order_id for order_id, _ in rows)
    return len(rows)


def _add(t: list[Any], row: dict[str, Any]) -> None:
    """One books row into [round trips, USDT bought, cost] (``day_totals``'s sums)."""
    if row["kind"] == "oto" and row["placed"] == 1:
        t[0] += 1
        t[1] += Decimal(row["buy_quote"] or 0)
    t[2] += Decimal(row["cost"] or 0)


def day_totals_from_store(settings: StoreSettings, since: str) -> dict[str, list[DayTotals]]:
    """user -> its totals per day and token from the shared books (``day_totals``'s sums)."""
    from config.pgstore import connect

    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT user_id, day, token, row FROM books WHERE day >= %s ORDER BY day, token",
            (since,),
        ).fetchall()
    acc: dict[str, dict[tuple[str, str], list[Any]]] = {}
    for uid, day, token, row in rows:
        _add(acc.setdefault(uid, {}).setdefault((day, token), [0, Decimal(0), Decimal(0)]), row)
    return {
        uid: [DayTotals(d, tok, n, b, c) for (d, tok), (n, b, c) in per.items()]
        for uid, per in acc.items()
    }


async def other_nodes_rows(conn: Any, node: str, day: str) -> list[tuple[Any, ...]]:
    """(order id, user, strategy, token, row) of ``day`` that OTHER nodes copied."""
    cur = await conn.execute(
        "SELECT order_id, user_id, strategy_id, token, row FROM books"
        " WHERE day = %s AND node <> %s",
        (day, node),
    )
    return list(await cur.fetchall())


@dataclass(frozen=True)
class OtherNodesDay:
    """What the other nodes of a pool copied of ``day`` into the shared books, per user:
    its totals per token and strategy and their cost, less the orders this node's
    journal holds too (with the journal, the user's whole day); and the order ids of
    every row they copied (a new user process records today's round trips not among
    them: ``recovery.adopt_orphans``)."""

    day: str
    totals: dict[str, list[DayTotals]]
    spent: dict[str, Decimal]
    orders: dict[str, frozenset[str]]


def other_nodes_day(rows: list[tuple[Any, ...]], day: str, data_dir: str) -> OtherNodesDay:
    """``OtherNodesDay`` from the rows other nodes copied (``other_nodes_rows``), less the
    orders this node's journal holds too (one adopted here after a handover). Reads the
    journals: run it in a thread."""
    ours: dict[str, set[str]] = {}
    orders: dict[str, set[str]] = {}
    acc: dict[tuple[str, str, str], list[Any]] = {}
    for order_id, uid, sid, token, row in rows:
        orders.setdefault(uid, set()).add(order_id)
        if uid not in ours:
            ours[uid] = _journal_keys(uid, journal_path(data_dir, uid), day)
        if order_id not in ours[uid]:
            _add(acc.setdefault((uid, token, sid), [0, Decimal(0), Decimal(0)]), row)
    totals: dict[str, list[DayTotals]] = {}
    spent: dict[str, Decimal] = {}
    for (uid, token, sid), (n, b, c) in sorted(acc.items()):
        totals.setdefault(uid, []).append(DayTotals(day, token, n, b, c, sid))
        spent[uid] = spent.get(uid, Decimal(0)) + c
    return OtherNodesDay(day, totals, spent, {uid: frozenset(ids) for uid, ids in orders.items()})


def _journal_keys(uid: str, path: Path, day: str) -> set[str]:
    if not path.exists():
        return set()
    try:
        return {key for key, *_ in journal_rows(uid, path, day)}
    except sqlite3.Error:
        return set()
