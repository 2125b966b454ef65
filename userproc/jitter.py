"""Optional human-like variation (off by default): each round trip's amount and the pause
after it are drawn afresh, uniformly within the strategy's bounds.

* amount: ``single_trade_amount_usdt`` x (1 +- ``amount_jitter_percentage`` / 100);
* pause: ``trade_interval_seconds`` +- ``interval_jitter_seconds`` (never below 0).

The drawn amount is only the *full* size of the next trade: the planner still shrinks a
trade to what is missing of the target, so the overshoot bound (one trade's credit) holds
with jitter on. The random source is injectable (``Tuning.jitter_seed`` seeds it) so tests
can replay a run.
"""

from __future__ import annotations

import random
from decimal import ROUND_DOWN, Decimal

HUNDRED = Decimal(100)
CENT = Decimal("0.01")


class Jitter:
    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    def amount(self, amount: Decimal, percentage: Decimal) -> Decimal:
        """``amount`` moved by up to +-``percentage`` %, to the cent (unchanged at 0)."""
        if percentage <= 0:
            return amount
        u = Decimal(str(self.rng.uniform(-1.0, 1.0)))
        return (amount * (1 + u * percentage / HUNDRED)).quantize(CENT, rounding=ROUND_DOWN)

    def interval(self, seconds: float, jitter_seconds: float) -> float:
        """``seconds`` moved by up to +-``jitter_seconds`` (never negative)."""
        if jitter_seconds <= 0:
            return seconds
        return max(0.0, seconds + self.rng.uniform(-jitter_seconds, jitter_seconds))
