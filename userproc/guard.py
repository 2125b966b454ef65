"""The volatility guard: do not buy while the price is jumping around.

Keeps the prices seen over the last ``window`` seconds; if the spread between the highest
and lowest exceeds ``max_price_volatility_percentage`` of the lowest, the runner pauses
(WAITING_PRICE) and looks again later instead of buying into the move.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal


class PriceGuard:
    def __init__(self, window_seconds: float) -> None:
        self.window = window_seconds
        self._seen: deque[tuple[float, Decimal]] = deque()

    def observe(self, now: float, price: Decimal) -> None:
        self._seen.append((now, price))
        while self._seen and now - self._seen[0][0] > self.window:
            self._seen.popleft()

    def moved_percentage(self) -> Decimal:
        if not self._seen:
            return Decimal(0)
        prices = [p for _, p in self._seen]
        lo, hi = min(prices), max(prices)
        return (hi - lo) / lo * 100 if lo > 0 else Decimal(0)

    def too_volatile(self, limit_percentage: Decimal) -> bool:
        return self.moved_percentage() > limit_percentage
