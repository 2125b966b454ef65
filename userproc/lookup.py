"""Finding an order that may exist on the exchange, from what the journal meant to place.

A POST whose outcome is unknown (it timed out, or the process died during it) is never
sent again: its intent row is *looked up* in this account's open orders and order history
around the intent time, matching symbol, side, price and quantity and skipping ids the
journal already owns. An OTO's sell leg is taken only from what the exchange says (its
order list, or the one matching sell); until that is conclusive the look-up goes on and
nothing new is placed. Used by the round trip (``roundtrip``) and by the reconciliation
after a restart (``recovery``); it imports neither.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from exchange.models import HistoryOrder, OpenOrder
from userproc.journal import TradeRow
from userproc.lifecycle import STRATEGY
from userproc.session import Session

log = structlog.get_logger(__name__)

PAGE_ROWS = 100
MAX_PAGES = 10


async def history(s: Session, start_ms: int, end_ms: int) -> list[HistoryOrder]:
    """The account's order history between the two times (at most ``MAX_PAGES`` pages)."""
    rows: list[HistoryOrder] = []
    for page in range(1, MAX_PAGES + 1):
        got: list[HistoryOrder] = await s.call(
            "order_history",
            s.client.order_history,
            start_ms=start_ms,
            end_ms=end_ms,
            page=page,
            rows=PAGE_ROWS,
        )
        rows.extend(got)
        if len(got) < PAGE_ROWS:
            break
    return rows


async def _candidates(s: Session, row: TradeRow) -> list[HistoryOrder]:
    opened: list[OpenOrder] = await s.call("open_orders", s.client.open_orders)
    start = row.intent_ms - s.tuning.lookup_slack_ms
    end = s.clock.now_ms() + 60_000
    return [*opened, *await history(s, start, end)]


def _earliest(matches: list[HistoryOrder]) -> HistoryOrder | None:
    if not matches:
        return None
    return min(matches, key=lambda o: (o.time_ms or 0, _number(o.order_id)))


def _number(order_id: object) -> int:
    oid = str(order_id)
    return int(oid) if oid.isdigit() else 0


async def _until_landed(s: Session, row: TradeRow) -> None:
    """A POST that was in flight (we died or timed out) can still be executed until its
    request timeout has passed: only a look-up after that is conclusive."""
    land_by = row.intent_ms / 1000 + s.request_timeout + s.tuning.post_land_margin_seconds
    wait = land_by - s.clock.time()
    if wait > 0:
        log.info("waiting_for_lost_post", trade_id=row.id, seconds=round(wait, 3))
        await s.clock.sleep(wait)


async def _find(
    s: Session, row: TradeRow, is_ours: Callable[[HistoryOrder], bool]
) -> tuple[HistoryOrder | None, list[HistoryOrder]]:
    """The earliest order on the exchange that this intent row placed (``is_ours`` checks
    side, kind, price and quantity), asked after the POST can no longer land, a few times;
    ids the journal already owns and orders older than the intent are never taken.
    Returns (order or None, every row seen in the last look)."""
    await _until_landed(s, row)
    known = s.journal.known_order_ids()
    slack = s.tuning.lookup_slack_ms
    rows: list[HistoryOrder] = []
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
    return str(w.order_id), pending


def _partner(s: Session, w: HistoryOrder, rows: list[HistoryOrder], row: TradeRow) -> str | None:
    """The OTO sell of working order ``w``, if the exchange's rows tell which it is."""
    if w.order_list_id:
        legs = {o.order_id for o in rows if o.order_list_id == w.order_list_id} - {w.order_id}
        if len(legs) == 1:
            return str(legs.pop())
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
    return str(legs.pop()) if len(legs) == 1 else None


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
    return str(o.order_id)
