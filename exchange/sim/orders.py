"""Orders and trades of the sim, and how each is written in Binance's own shapes.

The stream report keys and their order follow ``execution_report_oto_sequence.json``; the
history row carries the union of keys seen in ``order_history_merge.json``; the trade row
follows ``user_trades.json``. Keeping the writers here means one place to fix if the
real shapes move.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from exchange.sim.numbers import ZERO, plain, s8
from exchange.sim.universe import TokenSpec

OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED", "PENDING"})
NINE = Decimal("0.000000001")


@dataclass
class Trade:
    trade_id: int
    page_id: int
    price: Decimal
    qty: Decimal
    quote: Decimal
    fee: Decimal
    fee_asset: str
    time_ms: int


@dataclass(eq=False)
class Order:
    order_id: int
    account: str
    token: TokenSpec
    side: str
    price: Decimal
    orig_qty: Decimal
    status: str
    created_ms: int
    client_order_id: str
    order_list_id: int = -1
    position: str | None = None  # OTO_WORKING / OTO_PENDING
    partner: Order | None = None
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    fee_total: Decimal = ZERO
    locked: Decimal = ZERO  # USDT (buy) or token (sell) still reserved for this order
    updated_ms: int = 0
    working_ms: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    in_book: bool = False
    stuck: bool = False  # held by the never-fill fault

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_oto(self) -> bool:
        return self.position is not None

    def set_status(self, status: str, now_ms: int) -> None:
        self.status = status
        self.updated_ms = now_ms
        self.history.append({"status": status, "time_ms": now_ms})

    def avg_price(self) -> str:
        if self.executed_qty == 0:
            return "0"
        return format((self.cum_quote / self.executed_qty).quantize(NINE, ROUND_DOWN), "f")

    # -- Binance shapes -------------------------------------------------------------------

    def report(
        self,
        *,
        exec_type: str,
        event_id: int,
        now_ms: int,
        trade: Trade | None = None,
        maker: bool = False,
    ) -> dict[str, Any]:
        """An ``executionReport`` payload (the ``data`` of a stream message)."""
        qty = "0" if self.status == "PENDING" else s8(self.orig_qty)
        out: dict[str, Any] = {
            "s": self.token.pair,
            "c": self.client_order_id,
            "S": self.side,
            "o": "LIMIT",
            "f": "GTC",
            "q": qty,
            "p": s8(self.price),
            "ap": self.avg_price(),
            "P": "0",
            "x": exec_type,
            "X": self.status,
            "i": str(self.order_id),
            "l": s8(trade.qty) if trade else "0",
            "z": s8(self.executed_qty),
            "L": s8(trade.price) if trade else "0",
        }
        if trade is not None:
            out["n"] = s8(trade.fee)
            out["N"] = trade.fee_asset
        out.update(
            {
                "t": str(trade.trade_id) if trade else "0",
                "m": maker,
                "ot": "LIMIT",
                "st": 1,
                "O": self.created_ms,
                "Z": s8(self.cum_quote),
                "Y": s8(trade.quote) if trade else "0",
                "Q": "0",
                "ba": self.token.alpha_id,
                "qa": "USDT",
                "id": event_id,
                "il": str(self.order_list_id),
                "ct": "OTO" if self.is_oto else None,
                "cp": self.position,
                "e": "executionReport",
                "T": now_ms,
                "u": now_ms,
                "E": now_ms,
            }
        )
        return out

    def history_row(self) -> dict[str, Any]:
        """A row of ``get-order-history-merge`` (also used for open orders)."""
        return {
            "kind": "LIMIT",
            "orderId": str(self.order_id),
            "symbol": self.token.pair,
            "status": self.status,
            "price": plain(self.price),
            "avgPrice": self.avg_price(),
            "origQty": plain(self.orig_qty),
            "executedQty": plain(self.executed_qty),
            "cumQuote": plain(self.cum_quote),
            "type": "LIMIT",
            "side": self.side,
            "stopPrice": "0",
            "time": self.created_ms,
            "updateTime": self.updated_ms,
            "orderListId": str(self.order_list_id),
            "baseAsset": self.token.alpha_id,
            "quoteAsset": "USDT",
            "alphaId": self.token.alpha_id,
            "contingencyType": "OTO" if self.is_oto else None,
            "contingencyOrderPosition": self.position,
            "workingTime": self.working_ms,
            "targetStrategy": None,
        }

    def trade_rows(self) -> list[dict[str, Any]]:
        """Rows of ``get-user-trades`` for this order, newest first like the sample."""
        rows = []
        last = len(self.trades) - 1
        for idx, t in enumerate(self.trades):
            rows.append(
                {
                    "symbol": self.token.pair,
                    "id": str(t.trade_id),
                    "orderId": str(self.order_id),
                    "tradeId": str(t.trade_id),
                    "side": self.side,
                    "price": plain(t.price),
                    "qty": plain(t.qty),
                    "quoteQty": plain(t.quote),
                    "commission": plain(t.fee),
                    "commissionAsset": t.fee_asset,
                    "time": t.time_ms,
                    "pageId": str(t.page_id),
                    "buyer": self.side == "BUY",
                    "baseAsset": self.token.alpha_id,
                    "quoteAsset": "USDT",
                    "orderType": "LIMIT",
                    "lastTrade": idx == last,
                }
            )
        rows.reverse()
        return rows

    def admin_view(self) -> dict[str, Any]:
        return {
            "order_id": str(self.order_id),
            "symbol": self.token.pair,
            "token": self.token.symbol,
            "side": self.side,
            "price": str(self.price),
            "orig_qty": str(self.orig_qty),
            "executed_qty": str(self.executed_qty),
            "cum_quote": str(self.cum_quote),
            "fee": str(self.fee_total),
            "status": self.status,
            "order_list_id": str(self.order_list_id),
            "position": self.position,
            "created_ms": self.created_ms,
            "history": list(self.history),
            "trades": [
                {
                    "trade_id": str(t.trade_id),
                    "price": str(t.price),
                    "qty": str(t.qty),
                    "quote": str(t.quote),
                    "fee": str(t.fee),
                    "fee_asset": t.fee_asset,
                    "time_ms": t.time_ms,
                }
                for t in self.trades
            ],
        }
