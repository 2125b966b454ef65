"""The sim's order book as the public sees it: best bid/ask around the mid price, the
levels ``fullDepth`` shows, and the candles ``klines``/``agg-klines`` serve.

The engine keeps one mid price per token (the random walk). The spread puts the bid and
the ask around it in whole ticks; a marketable BUY fills at the ask and a marketable SELL
at the bid, whatever its limit. Liquidity is not consumed: every level shows
``depth_usdt`` worth and a fill never moves the price (our orders are small next to the
real books).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from exchange.sim.numbers import ZERO, floor_to

MINUTE_MS = 60_000
KLINE_MINUTES_KEPT = 1500  # 25 h of one-minute bars per token
INTERVAL_MS = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": 1440 * MINUTE_MS,
}


@dataclass(frozen=True)
class Quote:
    bid: Decimal
    ask: Decimal


def book_quote(mid: Decimal, spread: Decimal, tick: Decimal) -> Quote:
    """Best bid and ask: ``spread`` x mid wide in whole ticks (at least one), around mid.

    With spread 0 both sides are the mid price (one price for buyers and sellers).
    """
    if spread <= 0:
        return Quote(mid, mid)
    width = max(1, int((mid * spread / tick).to_integral_value(ROUND_HALF_UP)))
    bid = max(tick, mid - (width // 2) * tick)
    return Quote(bid, bid + width * tick)


def depth_levels(
    q: Quote, tick: Decimal, step: Decimal, depth_usdt: Decimal, limit: int
) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    """``limit`` levels a side, best first, one gap apart (half the spread, >= 1 tick).

    Deeper levels hold a little more (a quarter of ``depth_usdt`` more per level).
    """
    gap = max(tick, floor_to((q.ask - q.bid) / 2, tick))
    bids: list[tuple[Decimal, Decimal]] = []
    asks: list[tuple[Decimal, Decimal]] = []
    for k in range(limit):
        usdt = depth_usdt * (1 + Decimal(k) / 4)
        bid = q.bid - gap * k
        if bid > 0:
            bids.append((bid, floor_to(usdt / bid, step)))
        ask = q.ask + gap * k
        asks.append((ask, floor_to(usdt / ask, step)))
    return bids, asks


@dataclass
class Bar:
    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO  # base quantity the sim's own fills traded
    quote_volume: Decimal = ZERO
    trades: int = 0

    def add_price(self, price: Decimal) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price


class KlineBook:
    """One-minute bars per token (the last ``KLINE_MINUTES_KEPT``), merged on request."""

    def __init__(self) -> None:
        self._bars: dict[str, deque[Bar]] = {}

    def _bar(self, key: str, ms: int, price: Decimal) -> Bar:
        bars = self._bars.setdefault(key, deque(maxlen=KLINE_MINUTES_KEPT))
        start = ms - ms % MINUTE_MS
        if bars and bars[-1].open_ms == start:
            return bars[-1]
        if bars and bars[-1].open_ms > start:  # the clock never goes back; be safe anyway
            return bars[-1]
        opened = bars[-1].close if bars else price
        bar = Bar(start, opened, max(opened, price), min(opened, price), price)
        bars.append(bar)
        return bar

    def price(self, key: str, ms: int, price: Decimal) -> None:
        self._bar(key, ms, price).add_price(price)

    def trade(self, key: str, ms: int, price: Decimal, qty: Decimal, quote: Decimal) -> None:
        bar = self._bar(key, ms, price)
        bar.add_price(price)
        bar.volume += qty
        bar.quote_volume += quote
        bar.trades += 1

    def bars(self, key: str, interval_ms: int, limit: int, now_ms: int) -> list[Bar]:
        """The last ``limit`` bars of ``interval_ms`` up to now; a stretch without any
        price change is a flat bar at the previous close (volume 0)."""
        minute_bars = list(self._bars.get(key, ()))
        if not minute_bars:
            return []
        last_start = now_ms - now_ms % interval_ms
        first_start = max(
            last_start - (limit - 1) * interval_ms,
            minute_bars[0].open_ms - minute_bars[0].open_ms % interval_ms,
        )
        i = 0
        close = minute_bars[0].open
        while i < len(minute_bars) and minute_bars[i].open_ms < first_start:
            close = minute_bars[i].close
            i += 1
        out = []
        for start in range(first_start, last_start + 1, interval_ms):
            bar = Bar(start, close, close, close, close)
            while i < len(minute_bars) and minute_bars[i].open_ms < start + interval_ms:
                m = minute_bars[i]
                bar.high = max(bar.high, m.high)
                bar.low = min(bar.low, m.low)
                bar.close = m.close
                bar.volume += m.volume
                bar.quote_volume += m.quote_volume
                bar.trades += m.trades
                close = m.close
                i += 1
            out.append(bar)
        return out
