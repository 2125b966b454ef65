"""After a restart (or a POST whose outcome is unknown): find out what really happened.

Every journal row without an outcome is reconciled with the exchange before anything new
is placed:

* an intent without ids (killed during the POST, or the POST timed out) is *looked up*
  (``lookup``): found -> adopted, not found -> it was never placed. It is never re-sent
  blindly;
* an OTO with ids is driven to its end like any round trip (wait / cancel / sell what we
  bought and did not sell);
* a leftover sell is finished the same way before its round trip is closed.

So a ``kill -9`` at any point gives no duplicate order, no lost fill and, since the volume
is always read back from the exchange, no volume counted twice.

On a node of a pool, ``adopt_orphans`` also records the round trips of today that are
over and that no node copied into the shared books (the node that ran them died, or
handed the user over, before its next copy), with the fills the exchange reports, so the
user's day and its cost cap stay whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import structlog

from exchange.models import HistoryOrder, OpenOrder, TokenInfo
from userproc.journal import TradeRow
from userproc.lookup import history, lookup_oto, lookup_sell
from userproc.outcome import Outcome
from userproc.roundtrip import RoundTrip, TradeResult
from userproc.session import Market, Session
from userproc.spec import CopiedElsewhere

log = structlog.get_logger(__name__)

DAY_MS = 86_400_000
# a pool: at most this many round trips another node finished and did not copy are
# recorded at a start (the latest; ~5 REST calls each). A node copies every 5 s, so a
# handover or a dead node leaves a few; more means the books read was old.
MAX_RECOVERED = 10


async def reconcile(s: Session, markets: dict[str, Market]) -> list[TradeResult]:
    """Finish every unfinished journal trade; returns the TradeResults (for the cost).
    ``markets`` maps a symbol to its Market (filters); missing ones are resolved here."""
    results: list[TradeResult] = []
    rows = s.journal.open_trades()
    if not rows:
        return results
    log.info("reconciling", unfinished=len(rows))
    # leftover sells first: their fills belong to their round trip's total
    for row in sorted(rows, key=lambda r: (r.kind != "sell", r.id)):
        if row.kind == "sweep":  # its sells (just finished) are what it sold
            s.journal.finish(row.id, Outcome.SWEPT, s.clock.now_ms())
            continue
        market = markets.get(row.symbol) or await _market(s, row)
        markets[row.symbol] = market
        rt = RoundTrip(s, market)
        placed = row if row.placed != 0 else await _looked_up(s, rt, row)
        if placed is None:
            continue
        if placed.kind == "oto":
            results.append(await rt.finish(placed))
        else:
            await rt.finish_sell(placed)
    return results


async def _looked_up(s: Session, rt: RoundTrip, row: TradeRow) -> TradeRow | None:
    """An intent without ids: its row with the ids of the order it placed, or None (and
    the journal says it was never placed) when the exchange has no such order."""
    ids: tuple[str, str | None] | None
    if row.kind == "oto":
        ids = await lookup_oto(s, row)
    else:
        oid = await lookup_sell(s, row)
        ids = None if oid is None else (oid, None)
    if ids is None:
        rt.not_placed(row.id, Outcome.NOT_PLACED, "recovery: not found")
        return None
    s.journal.record_ids(row.id, *ids)
    return s.journal.get(row.id)


async def _market(s: Session, row: TradeRow) -> Market:
    info = await s.call("exchange_info", s.client.exchange_info)
    return Market(
        token=row.token,
        base_asset=row.base_asset,
        symbol=row.symbol,
        filters=info.get(row.symbol),
    )


@dataclass(frozen=True)
class _Orphan:
    """An order of ours the journal does not explain, and what adopting it means."""

    kind: str  # "oto" (``order`` is its buy) | "sell" (a plain sell)
    order: HistoryOrder
    pending: HistoryOrder | None = None  # the OTO's sell
    sells: tuple[HistoryOrder, ...] = ()  # plain sells that sold what the OTO's sell left


async def adopt_orphans(
    s: Session, strategies: dict[str, str], copied: CopiedElsewhere | None = None
) -> int:
    """Orders of ours the journal does not explain (it was emptied, lost or replaced while
    no process ran, or another node of a pool ran the user): before anything new is
    placed, today's OTOs and open plain sells on the strategies' symbols (``strategies``:
    token -> strategy id) that still need work (a leg open, or tokens bought and not
    sold) are adopted with a warning, written to the journal and finished like any round
    trip (waited for, or cancelled and sold). On a node of a pool (``copied``), today's
    round trips that are over and that no node copied into the shared books are recorded
    the same way (their fills read back; nothing placed): the user's day stays whole.
    Returns how many were adopted or recorded."""
    tokens = {t.pair: t for t in await s.token_list()}
    wanted = {pair: t for pair, t in tokens.items() if t.symbol in strategies}
    if not wanted:
        return 0
    now = s.clock.now_ms()
    orphans = await _unknown_orders(s, wanted, now)
    adopted = 0
    uncopied: list[_Orphan] = []
    for w in orphans:
        t = wanted[w.symbol]
        orphan = await _needs_work(s, w, orphans, t)
        if orphan is not None:
            await _adopt(s, orphan, t, strategies[t.symbol], now)
            adopted += 1
        elif _uncopied(s, w, copied):
            over = _over(w, orphans)
            if over is not None:
                uncopied.append(over)
    uncopied.sort(key=lambda o: o.order.time_ms or 0)
    if len(uncopied) > MAX_RECOVERED:
        log.warning("round_trips_not_recovered", count=len(uncopied) - MAX_RECOVERED)
    for o in uncopied[-MAX_RECOVERED:]:
        t = wanted[o.order.symbol]
        await _adopt(s, o, t, strategies[t.symbol], now, why=_UNCOPIED)
        adopted += 1
    return adopted


_UNKNOWN = "an order on the exchange that the journal does not know"
_UNCOPIED = "a round trip another node of the pool finished and did not copy to the books"


def _uncopied(s: Session, w: HistoryOrder, copied: CopiedElsewhere | None) -> bool:
    """``w`` is the buy of a round trip (over) that no other node copied today."""
    return (
        copied is not None
        and copied.day == s.clock.utc_day().isoformat()
        and w.contingency_position == "OTO_WORKING"
        and str(w.order_id) not in copied.order_ids
    )


def _over(w: HistoryOrder, orphans: list[HistoryOrder]) -> _Orphan | None:
    """The round trip of buy ``w`` if it is over: its legs ended and all it bought sold,
    by its OTO sell or by plain sells of the process that ran it (``_sold_after``, every
    one filled); None otherwise."""
    p = _pending_leg(w, orphans)
    if p is None or _leg_open(w, p):
        return None
    if not _unfinished(w, p):
        return _Orphan("oto", w, p)
    sells = _sold_after(w, orphans)
    if not sells or any(o.status != "FILLED" for o in sells):
        return None
    return _Orphan("oto", w, p, sells)


def _sold_after(w: HistoryOrder, orphans: list[HistoryOrder]) -> tuple[HistoryOrder, ...]:
    """The plain sells on ``w``'s symbol placed after buy ``w`` and before the next
    round trip's buy: what sold the tokens its OTO's sell left."""
    start = w.time_ms or 0
    later = [
        o.time_ms or 0
        for o in orphans
        if o.symbol == w.symbol and o.contingency_position == "OTO_WORKING"
    ]
    end = min((t for t in later if t > start), default=None)
    return tuple(
        o
        for o in orphans
        if o.symbol == w.symbol
        and not o.contingency_position
        and o.side == "SELL"
        and start <= (o.time_ms or 0)
        and (end is None or (o.time_ms or 0) < end)
    )


def _pending_leg(w: HistoryOrder, orphans: list[HistoryOrder]) -> HistoryOrder | None:
    """The OTO's sell that goes with its buy ``w``, among ``orphans``."""
    return next(
        (
            o
            for o in orphans
            if o.order_list_id and o.order_list_id == w.order_list_id and o.order_id != w.order_id
        ),
        None,
    )


async def _unknown_orders(s: Session, wanted: dict[str, TokenInfo], now: int) -> list[HistoryOrder]:
    """Today's orders and the open ones on the ``wanted`` symbols that the journal does
    not know."""
    known = s.journal.known_order_ids()
    day_start = now - now % DAY_MS  # 00:00 UTC today
    rows = {o.order_id: o for o in await history(s, day_start, now + 60_000)}
    opened: list[OpenOrder] = await s.call("open_orders", s.client.open_orders)
    rows.update({o.order_id: o for o in opened})
    return [o for o in rows.values() if o.symbol in wanted and o.order_id not in known]


async def _needs_work(
    s: Session, w: HistoryOrder, orphans: list[HistoryOrder], t: TokenInfo
) -> _Orphan | None:
    """``w`` as an orphan to adopt: an OTO's buy whose round trip is not over, or an open
    plain sell; None for anything else (an OTO's sell goes with its buy)."""
    if w.contingency_position == "OTO_WORKING":
        return await _oto_orphan(s, w, orphans, t)
    if not w.contingency_position and w.side == "SELL" and w.status in _OPEN:
        return _Orphan("sell", w)
    return None


async def _oto_orphan(
    s: Session, w: HistoryOrder, orphans: list[HistoryOrder], t: TokenInfo
) -> _Orphan | None:
    p = _pending_leg(w, orphans)
    if not _unfinished(w, p):
        return None
    if p is None and w.executed_qty:
        log.warning("orphan_sell_leg_unknown", working_order_id=w.order_id)
        return None  # never sell tokens that an unknown live sell may hold locked
    if not _leg_open(w, p) and await _sold_since(s, t, w, p):
        # its legs are over and the wallet holds less than it left unsold: a leftover
        # sell of the process (or host) that ran it sold them (selling them again would
        # be refused; the day's dust sweep takes what is left)
        log.info("orphan_already_sold", working_order_id=w.order_id)
        return None
    return _Orphan("oto", w, p)


async def _adopt(
    s: Session, o: _Orphan, t: TokenInfo, strategy_id: str, now: int, why: str = _UNKNOWN
) -> None:
    """Write the orphan to the journal, then finish it like any round trip."""
    w, p = o.order, o.pending
    say = log.info if why == _UNCOPIED else log.warning
    say("orphan_adopted", order_id=w.order_id, symbol=w.symbol, kind=o.kind, why=why)
    tid = _record(s, o.kind, w, t, strategy_id, now, sell_price=p.price if p else w.price)
    s.journal.record_ids(tid, str(w.order_id), str(p.order_id) if p else None)
    for sell in o.sells:  # its leftover sells, over: their fills count as sold
        sid = _record(s, "sell", sell, t, strategy_id, now, sell_price=sell.price, parent=tid)
        s.journal.record_ids(sid, str(sell.order_id))
        s.journal.finish(sid, Outcome.SOLD, now)
    row = s.journal.get(tid)
    rt = RoundTrip(s, await _market(s, row))
    await (rt.finish(row) if o.kind == "oto" else rt.finish_sell(row))


def _record(
    s: Session,
    kind: str,
    order: HistoryOrder,
    t: TokenInfo,
    strategy_id: str,
    now: int,
    *,
    sell_price: Decimal | None,
    parent: int | None = None,
) -> int:
    """The journal's intent row for an ``order`` found on the exchange."""
    return s.journal.record_intent(
        kind=kind,
        parent_id=parent,
        strategy_id=strategy_id,
        day=s.clock.utc_day().isoformat(),
        symbol=order.symbol,
        base_asset=t.alpha_id,
        token=t.symbol,
        qty=order.orig_qty or order.executed_qty or Decimal(0),
        buy_price=order.price if kind == "oto" else None,
        sell_price=sell_price,
        intent_ms=order.time_ms or now,
    )


_OPEN = ("NEW", "PARTIALLY_FILLED", "PENDING")


def _leg_open(w: HistoryOrder, p: HistoryOrder | None) -> bool:
    return w.status in _OPEN or (p is not None and p.status in _OPEN)


async def _sold_since(
    s: Session, token: TokenInfo, w: HistoryOrder, p: HistoryOrder | None
) -> bool:
    """The wallet holds less of ``token``, free, than the round trip left unsold."""
    unsold = (w.executed_qty or Decimal(0)) - ((p.executed_qty or Decimal(0)) if p else 0)
    held = Decimal(0)
    for b in await s.call("wallet", s.client.wallet):
        if b.asset == token.alpha_id or b.symbol == token.symbol:
            held += b.free or Decimal(0)
    return held < unsold


def _unfinished(w: HistoryOrder, p: HistoryOrder | None) -> bool:
    """A leg still open, or tokens bought and not all sold."""
    if _leg_open(w, p):
        return True
    return bool(w.executed_qty) and (p is None or p.status != "FILLED")
