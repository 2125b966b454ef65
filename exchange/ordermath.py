"""All order maths, in one place.

Prices snap to the symbol's tick (a BUY rounds up so it still crosses the market, a SELL
rounds down so it still crosses), quantities floor to the lot step (never buy more than
was paid for), the payment amount is price x quantity truncated to 8 decimals (what the
browser sends), and decimals are written without exponent or float rounding.

Filters vary per symbol and may be missing: a missing tick/step falls back to the symbol's
precision (or 1e-8), a missing limit is simply not checked.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Context, Decimal, localcontext

import msgspec

from exchange.errors import OrderRejected
from exchange.models import LimitOrderRequest, OtoOrderRequest, SymbolFilters

EIGHT_PLACES = Decimal("0.00000001")
_CTX = Context(prec=60)


class OrderMathError(OrderRejected, ValueError):
    """The order cannot be placed as asked; ``filter`` names the violated filter
    (``LOT_SIZE.minQty``, ``LOT_SIZE.maxQty``, ``MIN_NOTIONAL``, ``PRICE_FILTER`` ...)."""

    def __init__(self, message: str, *, filter: str) -> None:
        super().__init__(message)
        self.filter = filter


def _check_side(side: str) -> str:
    s = side.upper()
    if s not in ("BUY", "SELL"):
        raise ValueError(f"side must be BUY or SELL, not {side!r}")
    return s


def _to_grid(value: Decimal, unit: Decimal, rounding: str) -> Decimal:
    with localcontext(_CTX):
        n = (value / unit).to_integral_value(rounding=rounding)
        return n * unit


def round_price(price: Decimal, tick: Decimal | None, side: str) -> Decimal:
    """Snap ``price`` to ``tick``: BUY rounds up, SELL rounds down. No tick: 8 decimals."""
    rounding = ROUND_CEILING if _check_side(side) == "BUY" else ROUND_FLOOR
    return _to_grid(Decimal(price), tick if tick else EIGHT_PLACES, rounding)


def floor_qty(qty: Decimal, step: Decimal | None) -> Decimal:
    """Floor ``qty`` to the lot ``step`` (no step: 8 decimals)."""
    return _to_grid(Decimal(qty), step if step else EIGHT_PLACES, ROUND_FLOOR)


def payment_amount(price: Decimal, qty: Decimal) -> Decimal:
    """What the buyer pays: price x quantity truncated (not rounded) to 8 decimals."""
    with localcontext(_CTX):
        return (Decimal(price) * Decimal(qty)).quantize(EIGHT_PLACES, rounding=ROUND_DOWN)


def fmt(d: Decimal) -> str:
    """A decimal as plain text: no exponent, no trailing zeros (``1E-9`` -> ``0.000000001``)."""
    d = Decimal(d)
    if not d.is_finite():
        raise ValueError(f"not a finite number: {d}")
    if d.is_zero():
        return "0"
    s = format(d.normalize(_CTX), "f")
    return s


def json_number(d: Decimal) -> msgspec.Raw:
    """``d`` as a JSON number literal, exactly (no float on the way)."""
    return msgspec.Raw(fmt(d).encode())


def json_string(d: Decimal) -> str:
    """``d`` as a JSON string, the way the browser sends payment amounts (8 decimals kept)."""
    s = fmt(d)
    return s


def _precision_unit(precision: int | None) -> Decimal | None:
    return Decimal(1).scaleb(-precision) if precision is not None and precision >= 0 else None


def _tick(f: SymbolFilters) -> Decimal | None:
    return f.tick_size or _precision_unit(f.price_precision)


def _step(f: SymbolFilters) -> Decimal | None:
    return f.step_size or _precision_unit(f.quantity_precision)


def _check_price(f: SymbolFilters, price: Decimal, what: str) -> None:
    if price <= 0:
        raise OrderMathError(
            f"{what} {fmt(price)} is not positive after rounding to the tick",
            filter="PRICE_FILTER.tickSize",
        )
    if f.min_price and price < f.min_price:
        raise OrderMathError(
            f"{what} {fmt(price)} is below {f.symbol} PRICE_FILTER.minPrice {fmt(f.min_price)}",
            filter="PRICE_FILTER.minPrice",
        )
    if f.max_price and price > f.max_price:
        raise OrderMathError(
            f"{what} {fmt(price)} is above {f.symbol} PRICE_FILTER.maxPrice {fmt(f.max_price)}",
            filter="PRICE_FILTER.maxPrice",
        )


def _check_qty(f: SymbolFilters, qty: Decimal, price: Decimal) -> None:
    if qty <= 0 or (f.min_qty and qty < f.min_qty):
        floor = fmt(f.min_qty) if f.min_qty else "one step"
        raise OrderMathError(
            f"quantity {fmt(qty)} is below {f.symbol} LOT_SIZE.minQty {floor}",
            filter="LOT_SIZE.minQty",
        )
    if f.max_qty and qty > f.max_qty:
        raise OrderMathError(
            f"quantity {fmt(qty)} is above {f.symbol} LOT_SIZE.maxQty {fmt(f.max_qty)}",
            filter="LOT_SIZE.maxQty",
        )
    notional = price * qty
    if f.min_notional and notional < f.min_notional:
        raise OrderMathError(
            f"notional {fmt(notional)} is below {f.symbol} MIN_NOTIONAL {fmt(f.min_notional)}",
            filter="MIN_NOTIONAL",
        )
    if f.max_notional and notional > f.max_notional:
        raise OrderMathError(
            f"notional {fmt(notional)} is above {f.symbol} MAX_NOTIONAL {fmt(f.max_notional)}",
            filter="MAX_NOTIONAL",
        )


def plan_oto(
    filters: SymbolFilters,
    buy_price_raw: Decimal,
    sell_price_raw: Decimal,
    quote_amount: Decimal,
) -> OtoOrderRequest:
    """An OTO that spends at most ``quote_amount`` USDT on a limit BUY at ``buy_price_raw``
    (rounded up to the tick), with a pending SELL at ``sell_price_raw`` (rounded down).

    The quantity is ``quote_amount / buy price`` floored to the step. The pending sell has
    no quantity of its own: the exchange sells what the buy got, minus its fee. Its price
    is only checked against the price filter, not the notional (a low sell limit just
    means "sell at market", as seen in real traffic). Raises ``OrderMathError`` naming the
    violated filter.
    """
    tick = _tick(filters)
    buy = round_price(buy_price_raw, tick, "BUY")
    sell = round_price(sell_price_raw, tick, "SELL")
    _check_price(filters, buy, "buy price")
    _check_price(filters, sell, "sell price")
    with localcontext(_CTX):
        qty = floor_qty(Decimal(quote_amount) / buy, _step(filters))
    _check_qty(filters, qty, buy)
    return OtoOrderRequest(
        symbol=filters.symbol,
        base_asset=filters.base_asset,
        quote_asset=filters.quote_asset,
        working_price=buy,
        working_quantity=qty,
        payment_amount=payment_amount(buy, qty),
        pending_price=sell,
    )


def plan_limit(
    filters: SymbolFilters, side: str, price_raw: Decimal, qty: Decimal
) -> LimitOrderRequest:
    """A plain limit order (used to sell leftovers): price to the tick (BUY up, SELL down),
    quantity floored to the step, filters checked (``OrderMathError`` names the one).

    A SELL pays with the token: payment amount = quantity; a BUY pays price x quantity.
    """
    s = _check_side(side)
    price = round_price(price_raw, _tick(filters), s)
    _check_price(filters, price, "price")
    q = floor_qty(qty, _step(filters))
    _check_qty(filters, q, price)
    amount = payment_amount(price, q) if s == "BUY" else q
    return LimitOrderRequest(
        symbol=filters.symbol,
        base_asset=filters.base_asset,
        quote_asset=filters.quote_asset,
        side=s,
        price=price,
        quantity=q,
        payment_amount=amount,
    )
