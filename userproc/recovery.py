"""After a restart (or a POST whose outcome is unknown): find out what really happened.

Every journal row without an outcome is reconciled with the exchange before anything new
is placed:

* an intent without ids (killed during the POST, or the POST timed out) is *looked up* in
  this account's open orders and order history around the intent time, matching symbol,
  side, price and quantity and skipping ids the journal already owns; found -> adopted,
  not found -> it was never placed. It is never re-sent blindly. An OTO's sell leg is
  taken only from what the exchange says (its order list, or the one matching sell);
  until that is conclusive the look-up goes on and nothing new is placed;
* an OTO with ids is driven to its end like any round trip (wait / cancel / sell what we
  bought and did not sell);
* a leftover sell is finished the same way before its round trip is closed.

So a ``kill -9`` at any point gives no duplicate order, no lost fill and, since the volume
is always read back from the exchange, no volume counted twice.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import structlog

from userproc.journal import TradeRow
from userproc.lifecycle import STRATEGY
from userproc.roundtrip import RoundTrip
from userproc.session import Market, Session

log = structlog.get_logger(__name__)


async def _candidates(s: Session, row: TradeRow) -> list:
    opened = await s.call("open_orders", s.client.open_orders)
    start = row.intent_ms - s.tuning.lookup_slack_ms
    end = s.clock.now_ms() + 60_000
    rows: list[Any] = list(opened)  # open and past orders alike
    page = 1
    while page <= 10:
        hist = await s.call(
            "order_history", s.client.order_history, start_ms=start, end_ms=end, page=page, rows=100
        )
        rows.extend(hist)
        if len(hist) < 100:
            break
        page += 1
    return rows


def _earliest(matches: list) -> object | None:
    if not matches:
        return None
    return min(
        matches, key=lambda o: (o.time_ms or 0, int(o.order_id) if o.order_id.isdigit() else 0)
    )


async def _until_landed(s: Session, row: TradeRow) -> None:
    """A POST that was in flight (we died or timed out) can still be executed until its
    request timeout has passed: only a look-up after that is conclusive."""
    land_by = row.intent_ms / 1000 + s.request_timeout + s.tuning.post_land_margin_seconds
    wait = land_by - s.clock.time()
    if wait > 0:
        log.info("waiting_for_lost_post", trade_id=row.id, seconds=round(wait, 3))
        await s.clock.sleep(wait)


async def _find(s: Session, row: TradeRow, is_ours: Callable[[Any], bool]) -> tuple[Any, list]:
    """The earliest order on the exchange that this intent row placed (``is_ours`` checks
    side, kind, price and quantity), asked after the POST can no longer land, a few times;
    ids the journal already owns and orders older than the intent are never taken.
    Returns (order or None, every row seen in the last look)."""
    await _until_landed(s, row)
    known = s.journal.known_order_ids()
    slack = s.tuning.lookup_slack_ms
    rows: list = []
    for attempt in range(max(1, s.tuning.lookup_attempts)):
        rows = await _candidates(s, row)
        found = _earliest(
            [
                o
                for o in rows
                if o.symbol == row.symbol
                and o.order_id not in known
                and (o.time_ms is None or o.time_ms >= row.intent_ms - slack)
                and is_ours(o)
            ]
        )
        if found is not None:
            return found, rows
        if attempt + 1 < s.tuning.lookup_attempts:
            await s.clock.sleep(s.tuning.lookup_delay_seconds)
    return None, rows


async def lookup_oto(s: Session, row: TradeRow) -> tuple[str, str] | None:
    """The (working, pending) ids of the OTO this intent row placed, or None when the
    exchange has no such buy. Both legs come from what the exchange says, never from a
    guess (ids are global on the exchange: working id + 1 may be anyone's order): the
    sell is the buy's partner in its order list, or else the one activatable sell of ours
    on that symbol at this trade's sell price. While that is not conclusive the look-up
    goes on, with backoff, and nothing new is placed."""
    w, rows = await _find(
        s,
        row,
        lambda o: (
            o.side == "BUY"
            and o.contingency_position in ("OTO_WORKING", None)
            and o.price == row.buy_price
            and o.orig_qty == row.qty
        ),
    )
    if w is None:
        log.info("oto_not_found", trade_id=row.id)
        return None
    delay = s.tuning.lookup_delay_seconds
    while (pending := _partner(s, w, rows, row)) is None:
        log.warning("oto_sell_leg_unknown", trade_id=row.id, working_order_id=w.order_id)
        doing = f"looking up the sell of trade {row.id}"
        await s.life.sleep_unless_now(delay, STRATEGY.get(), doing=doing)
        delay = min(delay * 2, s.tuning.rest_check_seconds)
        rows = await _candidates(s, row)
    for o in rows:
        if o.order_id in (w.order_id, pending):
            await s.tracker.apply_rest(o)
    log.info("oto_found", trade_id=row.id, working_order_id=w.order_id, pending_order_id=pending)
    return w.order_id, pending


def _partner(s: Session, w: Any, rows: list, row: TradeRow) -> str | None:
    """The OTO sell of working order ``w``, if the exchange's rows tell which it is."""
    if w.order_list_id:
        legs = {o.order_id for o in rows if o.order_list_id == w.order_list_id} - {w.order_id}
        if len(legs) == 1:
            return legs.pop()
    known = s.journal.known_order_ids()
    since = row.intent_ms - s.tuning.lookup_slack_ms
    legs = {
        o.order_id
        for o in rows
        if o.symbol == row.symbol
        and o.side == "SELL"
        and o.contingency_position == "OTO_PENDING"
        and o.price == row.sell_price
        and o.order_id not in known
        and (o.time_ms is None or o.time_ms >= since)
        and (not w.order_list_id or not o.order_list_id)
    }
    return legs.pop() if len(legs) == 1 else None


async def lookup_sell(s: Session, row: TradeRow) -> str | None:
    """The id of the plain limit sell this intent row placed, or None."""
    o, _ = await _find(
        s,
        row,
        lambda o: (
            o.side == "SELL"
            and not o.contingency_position
            and o.price == row.sell_price
            and o.orig_qty == row.qty
        ),
    )
    if o is None:
        return None
    await s.tracker.apply_rest(o)
    return o.order_id


async def reconcile(s: Session, markets: dict[str, Market]) -> list:
    """Finish every unfinished journal trade; returns the TradeResults (for the cost).
    ``markets`` maps a symbol to its Market (filters); missing ones are resolved here."""
    results: list = []
    rows = s.journal.open_trades()
    if not rows:
        return results
    log.info("reconciling", unfinished=len(rows))
    # leftover sells first: their fills belong to their round trip's total
    for row in sorted(rows, key=lambda r: (r.kind != "sell", r.id)):
        if row.kind == "sweep":  # its sells (just finished) are what it sold
            s.journal.finish(row.id, "swept", s.clock.now_ms())
            continue
        market = markets.get(row.symbol) or await _market(s, row)
        markets[row.symbol] = market
        rt = RoundTrip(s, market)
        if row.placed == 0:
            if row.kind == "oto":
                found = await lookup_oto(s, row)
                if found is None:
                    s.journal.record_not_placed(
                        row.id, "not_placed", s.clock.now_ms(), "recovery: not found"
                    )
                    continue
                s.journal.record_ids(row.id, *found)
            else:
                oid = await lookup_sell(s, row)
                if oid is None:
                    s.journal.record_not_placed(
                        row.id, "not_placed", s.clock.now_ms(), "recovery: not found"
                    )
                    continue
                s.journal.record_ids(row.id, oid)
            row = s.journal.get(row.id)
        if row.kind == "oto":
            results.append(await rt.finish(row))
        else:
            await rt.finish_sell(row)
    return results


async def _market(s: Session, row: TradeRow) -> Market:
    info = await s.call("exchange_info", s.client.exchange_info)
    return Market(
        token=row.token,
        base_asset=row.base_asset,
        symbol=row.symbol,
        filters=info.get(row.symbol),
    )


async def adopt_orphans(s: Session, strategies: dict[str, str]) -> int:
    """Orders of ours the journal does not explain (it was emptied, lost or replaced while
    no process ran): before anything new is placed, today's OTOs and open plain sells on
    the strategies' symbols (``strategies``: token -> strategy id) that still need work
    (a leg open, or tokens bought and not sold) are adopted with a warning, written to
    the journal and finished like any round trip (waited for, or cancelled and sold).
    Returns how many were adopted."""
    tokens = {t.pair: t for t in await s.token_list()}
    wanted = {pair: t for pair, t in tokens.items() if t.symbol in strategies}
    if not wanted:
        return 0
    known = s.journal.known_order_ids()
    now = s.clock.now_ms()
    day_start = now - now % 86_400_000  # 00:00 UTC today
    rows = {o.order_id: o for o in await _history(s, day_start, now + 60_000)}
    rows.update({o.order_id: o for o in await s.call("open_orders", s.client.open_orders)})
    orphans = [o for o in rows.values() if o.symbol in wanted and o.order_id not in known]
    adopted = 0
    for w in orphans:
        t = wanted[w.symbol]
        if w.contingency_position == "OTO_WORKING":
            legs = [o for o in orphans if o.order_list_id and o.order_list_id == w.order_list_id]
            p = next((o for o in legs if o.order_id != w.order_id), None)
            if not _unfinished(w, p):
                continue
            if p is None and w.executed_qty:
                log.warning("orphan_sell_leg_unknown", working_order_id=w.order_id)
                continue  # never sell tokens that an unknown live sell may hold locked
            if not _leg_open(w, p) and await _sold_since(s, t, w, p):
                # its legs are over and the wallet holds less than it left unsold: a
                # leftover sell of the process (or host) that ran it sold them (selling
                # them again would be refused; the day's dust sweep takes what is left)
                log.info("orphan_already_sold", working_order_id=w.order_id)
                continue
            kind, buy_price, pending = "oto", w.price, p
        elif not w.contingency_position and w.side == "SELL" and w.status in _OPEN:
            kind, buy_price, pending = "sell", None, None
        else:
            continue
        log.warning(
            "orphan_adopted",
            order_id=w.order_id,
            symbol=w.symbol,
            kind=kind,
            why="an order on the exchange that the journal does not know",
        )
        tid = s.journal.record_intent(
            kind=kind,
            strategy_id=strategies[t.symbol],
            day=s.clock.utc_day().isoformat(),
            symbol=w.symbol,
            base_asset=t.alpha_id,
            token=t.symbol,
            qty=w.orig_qty or w.executed_qty,
            buy_price=buy_price,
            sell_price=pending.price if pending else w.price,
            intent_ms=w.time_ms or now,
        )
        s.journal.record_ids(tid, w.order_id, pending.order_id if pending else None)
        rt = RoundTrip(s, await _market(s, s.journal.get(tid)))
        row = s.journal.get(tid)
        await (rt.finish(row) if kind == "oto" else rt.finish_sell(row))
        adopted += 1
    return adopted


_OPEN = ("NEW", "PARTIALLY_FILLED", "PENDING")


def _leg_open(w: Any, p: Any) -> bool:
    return w.status in _OPEN or (p is not None and p.status in _OPEN)


async def _sold_since(s: Session, token: Any, w: Any, p: Any) -> bool:
    """The wallet holds less of ``token``, free, than the round trip left unsold."""
    unsold = (w.executed_qty or Decimal(0)) - ((p.executed_qty or Decimal(0)) if p else 0)
    held = Decimal(0)
    for b in await s.call("wallet", s.client.wallet):
        if b.asset == token.alpha_id or b.symbol == token.symbol:
            held += b.free or Decimal(0)
    return held < unsold


def _unfinished(w: Any, p: Any) -> bool:
    """A leg still open, or tokens bought and not all sold."""
    if w.status in _OPEN or (p is not None and p.status in _OPEN):
        return True
    return bool(w.executed_qty) and (p is None or p.status != "FILLED")


async def _history(s: Session, start_ms: int, end_ms: int) -> list:
    rows: list = []
    for page in range(1, 11):
        got = await s.call(
            "order_history",
            s.client.order_history,
            start_ms=start_ms,
            end_ms=end_ms,
            page=page,
            rows=100,
        )
        rows.extend(got)
        if len(got) < 100:
            break
    return rows
