"""Every order of this process, its lifecycle as data (after hummingbot's in-flight orders).

Two sources feed it: the user stream's execution reports and REST answers (open orders,
order history). They arrive in any order and may repeat, so updates are merged with two
rules that make the result independent of arrival order:

* a status never goes backwards (PENDING < NEW < PARTIALLY_FILLED < terminal; the first
  terminal status seen wins);
* cumulative filled quantity and quote only grow.

Reports about ids we have not learnt yet (the stream can beat the place response) are
simply kept under their id: when the ids become known the state is already there.
Waiters sleep on one ``asyncio.Condition`` and are woken on every change; nobody polls.

Besides the merged view, each order keeps the *stream chain*: the fills the user stream
reported one by one, each checked against the cumulative figures (``z`` must grow by
exactly the fill's ``l``, ``Z`` must grow with it, a fee must name its asset), and the stream's own
terminal report must close it at the chain's totals. When the chain covers everything the
order ever filled (``stream_exact``), its quantity, quote and fees are the exchange's own
and need no REST look-up; one missed or out-of-order event, or an end learnt only from
REST, and the caller asks REST (``Session.fills``).

Orders of finished trades are dropped (``forget``) so the tracker does not grow per
trade; late reports about them are ignored.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exchange.models import ExecutionReport, HistoryOrder

TERMINAL = frozenset({"FILLED", "CANCELED", "EXPIRED", "REJECTED"})
_RANK = {"PENDING": 0, "NEW": 1, "PARTIALLY_FILLED": 2}


def rank(status: str) -> int:
    return 3 if status in TERMINAL else _RANK.get(status, 0)


@dataclass(slots=True)
class OrderUpdate:
    """One report about an order, whatever its source ("stream", "rest" or "other"), in
    the tracker's terms: what ``OrderTracker._merge`` folds into the ``OrderState``."""

    source: str
    order_id: str
    symbol: str | None = None
    side: str | None = None
    status: str | None = None
    qty: Decimal | None = None
    price: Decimal | None = None
    cum_qty: Decimal | None = None
    cum_quote: Decimal | None = None
    order_list_id: object = None  # the exchange's id (an int or a string), "-1": none
    position: str | None = None
    fee: Decimal | None = None  # the last fill's fee (stream reports only)
    fee_asset: str | None = None


@dataclass
class OrderState:
    order_id: str
    symbol: str = ""
    side: str = ""
    status: str = "PENDING"
    qty: Decimal = Decimal(0)
    price: Decimal = Decimal(0)
    cum_qty: Decimal = Decimal(0)
    cum_quote: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)  # summed from stream reports (REST fills are authoritative)
    fee_asset: str | None = None
    order_list_id: str | None = None
    position: str | None = None  # OTO_WORKING / OTO_PENDING / None
    sources: set[str] = field(default_factory=set)
    # the stream chain (see the module docstring)
    stream_qty: Decimal = Decimal(0)
    stream_quote: Decimal = Decimal(0)
    stream_fee: Decimal = Decimal(0)
    stream_fee_asset: str | None = None
    stream_ok: bool = True
    stream_final: bool = False  # the stream itself reported the end, at the chain's total
    last_price: Decimal = Decimal(0)  # price of the last fill seen on the stream
    last_trade_ms: int | None = None

    @property
    def stream_exact(self) -> bool:
        """The stream reported every fill of this (finished) order, consistently."""
        return (
            self.terminal
            and self.stream_final
            and self.stream_ok
            and self.stream_qty == self.cum_qty
            and self.stream_quote == self.cum_quote
        )

    def _chain(self, r: ExecutionReport) -> None:
        """Extend the stream chain with one execution report."""
        z = _dec(r.cum_qty) or Decimal(0)
        if r.status in TERMINAL:
            # the exchange's last word on the order: its cumulative must be the chain's
            # (after this report's own fill, if it carries one)
            self._extend(r, z)
            quote = _dec(r.cum_quote) or Decimal(0)
            self.stream_final = (
                self.stream_ok and z == self.stream_qty and (z == 0 or quote == self.stream_quote)
            )
            return
        self._extend(r, z)

    def _extend(self, r: ExecutionReport, z: Decimal) -> None:
        if z <= self.stream_qty:
            return  # nothing new (a repeat, an older report, or no fill)
        last = _dec(r.last_qty) or Decimal(0)
        quote = _dec(r.cum_quote) or Decimal(0)
        fee = _dec(r.fee) or Decimal(0)
        asset = r.fee_asset
        if (
            last <= 0
            or self.stream_qty + last != z  # a fill in between was not reported to us
            or quote <= self.stream_quote  # a fill without its quote
            or (fee > 0 and not asset)
            or (fee > 0 and self.stream_fee_asset not in (None, asset))
        ):
            self.stream_ok = False
            return
        self.stream_qty, self.stream_quote = z, quote
        if fee > 0:
            self.stream_fee += fee
            self.stream_fee_asset = asset
        price = _dec(r.last_price) or Decimal(0)
        if price > 0:
            self.last_price = price
        self.last_trade_ms = r.trade_time_ms or self.last_trade_ms

    def learn(self, u: OrderUpdate) -> None:
        """What the order is (symbol, side, list, position, quantity, price): the last
        word that says anything; a price once known stays."""
        if u.symbol:
            self.symbol = u.symbol
        if u.side:
            self.side = u.side
        if u.order_list_id and u.order_list_id != "-1":
            self.order_list_id = str(u.order_list_id)
        if u.position:
            self.position = u.position
        q = _dec(u.qty)
        if q is not None and q > 0:
            self.qty = q
        p = _dec(u.price)
        if p is not None and p > 0 and not self.price:
            self.price = p

    def merge_fills(self, u: OrderUpdate) -> bool:
        """Cumulative quantity and quote only grow (a stream report's fee is summed);
        True when the quantity grew."""
        cq = _dec(u.cum_qty)
        cz = _dec(u.cum_quote)
        if cq is None or cq <= self.cum_qty:
            if cz is not None and cz > self.cum_quote and (cq is None or cq >= self.cum_qty):
                self.cum_quote = cz
            return False
        self.cum_qty = cq
        if cz is not None and cz > self.cum_quote:
            self.cum_quote = cz
        f = _dec(u.fee)
        if u.source == "stream" and f is not None and f > 0:
            self.fee += f
            self.fee_asset = u.fee_asset or self.fee_asset
        return True

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def filled(self) -> bool:
        return self.status == "FILLED"

    @property
    def open(self) -> bool:
        return not self.terminal


def _dec(v: object) -> Decimal | None:
    if v is None:
        return None
    return v if isinstance(v, Decimal) else Decimal(str(v))


class OrderTracker:
    def __init__(self) -> None:
        self._orders: dict[str, OrderState] = {}
        self._cond = asyncio.Condition()
        self._listeners: list[Callable[[OrderState], None]] = []
        self._fill_listeners: list[Callable[[OrderState], None]] = []
        self._forgotten: deque[str] = deque(maxlen=64)
        self.version = 0

    def add_listener(self, fn: Callable[[OrderState], None]) -> None:
        self._listeners.append(fn)

    def add_fill_listener(self, fn: Callable[[OrderState], None]) -> None:
        """Called for every fill the stream reports (chain intact): the freshest market
        price this process can know without asking."""
        self._fill_listeners.append(fn)

    def forget(self, *order_ids: str | None) -> None:
        """Drop finished orders; later reports about them are ignored."""
        for oid in order_ids:
            if oid and self._orders.pop(oid, None) is not None:
                self._forgotten.append(oid)

    def __len__(self) -> int:
        return len(self._orders)

    def get(self, order_id: str | None) -> OrderState | None:
        return None if order_id is None else self._orders.get(str(order_id))

    def ensure(self, order_id: str, **known: Any) -> OrderState:
        """Register an id we placed (keeps whatever the stream already told us)."""
        st = self._orders.get(order_id)
        if st is None:
            st = self._orders[order_id] = OrderState(order_id=order_id)
        for k, v in known.items():
            if v is not None and not getattr(st, k):
                setattr(st, k, v)
        return st

    def open_orders(self) -> list[OrderState]:
        return [o for o in self._orders.values() if o.open]

    # ------------------------------------------------------------------ merging
    def _merge(self, u: OrderUpdate) -> bool:
        st = self.ensure(u.order_id)
        before = (st.status, st.cum_qty, st.cum_quote, st.qty)
        st.learn(u)
        grew = st.merge_fills(u)
        if u.status and not st.terminal and rank(u.status) >= rank(st.status):
            st.status = u.status
        st.sources.add(u.source)
        changed = before != (st.status, st.cum_qty, st.cum_quote, st.qty) or grew
        if changed:
            self.version += 1
            for fn in self._listeners:
                fn(st)
        return changed

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def apply_report(self, r: ExecutionReport) -> bool:
        """An execution report from the user stream."""
        oid = str(r.order_id)
        if oid in self._forgotten and oid not in self._orders:
            return False
        st = self.ensure(oid)
        filled_before = st.stream_qty
        st._chain(r)
        if st.stream_qty > filled_before:
            for fn in self._fill_listeners:
                fn(st)
        changed = self._merge(
            OrderUpdate(
                source="stream",
                order_id=oid,
                symbol=r.symbol,
                side=r.side,
                status=r.status,
                qty=r.qty,
                price=r.price,
                cum_qty=r.cum_qty,
                cum_quote=r.cum_quote,
                order_list_id=r.order_list_id,
                position=r.contingency_position,
                fee=r.fee,
                fee_asset=r.fee_asset,
            )
        )
        if changed:
            await self._notify()
        return changed

    async def apply_rest(self, o: HistoryOrder) -> bool:
        """An ``OpenOrder`` / ``HistoryOrder`` from REST."""
        changed = self._merge(
            OrderUpdate(
                source="rest",
                order_id=str(o.order_id),
                symbol=o.symbol,
                side=o.side,
                status=o.status,
                qty=o.orig_qty,
                price=o.price,
                cum_qty=o.executed_qty,
                cum_quote=o.cum_quote,
                order_list_id=o.order_list_id,
                position=o.contingency_position,
            )
        )
        if changed:
            await self._notify()
        return changed

    async def apply_state(self, order_id: str, **fields: Any) -> bool:
        """A status learnt some other way (e.g. a cancel answered "not open" and the
        history says FILLED); same merge rules. ``fields``: those of ``OrderUpdate``."""
        changed = self._merge(OrderUpdate(source="other", order_id=str(order_id), **fields))
        if changed:
            await self._notify()
        return changed

    # ------------------------------------------------------------------ waiting
    async def wait(
        self,
        order_id: str,
        pred: Callable[[OrderState], bool],
        within: float,
        interrupt: asyncio.Event | None = None,
        hint: Callable[[], bool] = lambda: False,
    ) -> OrderState | None:
        """Wait up to ``within`` seconds until ``pred(state)`` holds (or ``hint()``, a sign
        that REST should be asked now); None on timeout, a hint, or when ``interrupt`` is set."""
        st = self.ensure(order_id)
        if pred(st):
            return st

        async def _until() -> None:
            async with self._cond:
                await self._cond.wait_for(lambda: pred(self._orders[order_id]) or hint())

        waiter = asyncio.ensure_future(_until())
        tasks: set[asyncio.Future] = {waiter}
        stopper = None
        if interrupt is not None:
            stopper = asyncio.ensure_future(interrupt.wait())
            tasks.add(stopper)
        try:
            await asyncio.wait(tasks, timeout=max(0.0, within), return_when="FIRST_COMPLETED")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        st = self._orders[order_id]
        return st if pred(st) else None
