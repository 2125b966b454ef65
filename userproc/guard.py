"""The volatility guard: do not buy while the price is jumping around.

Keeps the prices seen over the last ``window`` seconds (the ticker's, and our own fills',
which are market prices too); if the spread between the highest and lowest exceeds
``max_price_volatility_percentage`` of the lowest, the runner pauses (WAITING_PRICE) and
looks again later instead of buying into the move.

The window's lowest and highest are kept as two monotonic queues, so an observation
costs O(1) amortised and only prices that can still become the window's extreme are
stored (a steady stream of fills does not pile up).
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal


class PriceGuard:
    def __init__(self, window_seconds: float) -> None:
        self.window = window_seconds
        self._lo: deque[tuple[float, Decimal]] = deque()  # prices ascending
        self._hi: deque[tuple[float, Decimal]] = deque()  # prices descending

    def observe(self, now: float, price: Decimal) -> None:
        while self._lo and self._lo[-1][1] >= price:
            self._lo.pop()
        self._lo.append((now, price))
        while self._hi and self._hi[-1][1] <= price:
            self._hi.pop()
        self._hi.append((now, price))
        for q in (self._lo, self._hi):
            while now - q[0][0] > self.window:
                q.popleft()

    def moved_percentage(self) -> Decimal:
        if not self._lo:
            return Decimal(0)
        lo, hi = self._lo[0][1], self._hi[0][1]
        return (hi - lo) / lo * 100 if lo > 0 else Decimal(0)

    def too_volatile(self, limit_percentage: Decimal) -> bool:
        return self.moved_percentage() > limit_percentage
