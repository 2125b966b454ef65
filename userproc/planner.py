"""How many round trips a batch needs, and how big the last one is.

The seeds planned ``ceil(remaining / (amount / mulPoint))``, which is wrong by mulPoint^2
(DESIGN.md section 3). Here the credit a trade earns is *estimated* first and then
*learned* from the exchange's own numbers:

* estimate: a crossing limit buy fills at the market price, so the quote actually spent is
  about ``amount / (1 + buy_offset%)``; the exchange credits that x mulPoint in the
  ``reported`` basis and x 1 in the ``traded`` basis.
* learn: after a batch has settled, ``ratio = delta(volume in basis) / buy quote spent``.
  The ratio is stored normalised by the estimate's multiplier, so a mulPoint that changes
  between batches still scales it.

An estimate is never trusted with a big batch: the exchange may count differently (no
multiplier, or both sides counted = 2x). Until a ratio is learned, a batch is sized so
that even twice the estimated credit cannot overshoot the target; with fewer than two
trades' worth left, one trade shrunk to what is missing is the probe. The last trade of a
learned plan is shrunk to what is still missing, never below the exchange's minimum
notional, so the final volume lands at most one trade's credit above the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal

ONE = Decimal(1)
HUNDRED = Decimal(100)
WORST_CASE_FACTOR = Decimal(2)  # both sides counted: twice the buy-only estimate
LAST_TRADE_PAD = Decimal("1.03")  # price moves and lot rounding: aim a little above
CENT = Decimal("0.01")


def estimate_multiplier(basis: str, mul_point: Decimal) -> Decimal:
    return mul_point if basis == "reported" else ONE


def expected_quote(amount: Decimal, buy_offset_pct: Decimal) -> Decimal:
    """USDT a buy of ``amount`` (at limit = market x (1+offset)) really spends."""
    return amount / (ONE + buy_offset_pct / HUNDRED)


def min_trade_amount(
    min_notional: Decimal,
    sell_offset_pct: Decimal,
    *,
    step: Decimal | None = None,
    price: Decimal | None = None,
) -> Decimal:
    """Smallest buy amount whose OTO sell leg still clears the minimum notional: the sell
    is priced ``sell_offset%`` lower and sells the quantity minus the fee, floored to the
    lot step (up to two steps lost, which matters for coarse steps at high prices)."""
    sell_factor = ONE - max(sell_offset_pct, Decimal(0)) / HUNDRED
    raw = min_notional / sell_factor
    if step and price:
        raw += 2 * step * price
    return (raw * Decimal("1.05")).quantize(CENT, rounding=ROUND_UP)


class CreditModel:
    """What one USDT of buy quote earns in the strategy's basis; learnt over a run."""

    def __init__(self, basis: str) -> None:
        self.basis = basis
        self._delta = Decimal(0)  # sum of settled volume deltas / estimate multiplier
        self._quote = Decimal(0)  # sum of buy quote those deltas came from

    @property
    def learned(self) -> bool:
        return self._quote > 0 and self._delta > 0

    def ratio(self, mul_point: Decimal) -> Decimal:
        """Credit per USDT of buy quote."""
        mult = estimate_multiplier(self.basis, mul_point)
        if not self.learned:
            return mult
        return self._delta / self._quote * mult

    def observe(self, delta: Decimal, buy_quote: Decimal, mul_point: Decimal) -> None:
        """A settled read moved by ``delta`` after our buys spent ``buy_quote``. A zero
        delta teaches nothing (the figure lags or does not count us): stay unverified."""
        if buy_quote <= 0 or delta <= 0:
            return
        self._delta += delta / estimate_multiplier(self.basis, mul_point)
        self._quote += buy_quote


@dataclass(frozen=True)
class Plan:
    remaining: Decimal
    credit_per_trade: Decimal  # of a full-size trade
    loops: int
    amount: Decimal  # full trade size (USDT)
    last_amount: Decimal  # size of the last trade (<= amount)
    learned: bool

    def amount_for(self, index: int) -> Decimal:
        """Trade size for the 1-based ``index`` of this batch."""
        return self.last_amount if index == self.loops else self.amount

    def credit_for(self, index: int) -> Decimal:
        return self.credit_per_trade * self.amount_for(index) / self.amount


def plan_batch(
    *,
    remaining: Decimal,
    amount: Decimal,
    buy_offset_pct: Decimal,
    ratio: Decimal,
    learned: bool,
    min_amount: Decimal,
) -> Plan:
    credit_full = expected_quote(amount, buy_offset_pct) * ratio
    if remaining <= 0 or credit_full <= 0:
        return Plan(remaining, credit_full, 0, amount, amount, learned)

    def shrunk(rest: Decimal) -> Decimal:
        a = (rest / credit_full * amount * LAST_TRADE_PAD).quantize(CENT, rounding=ROUND_UP)
        return min(amount, max(min_amount, a))

    if not learned:
        safe = math.floor(remaining / (credit_full * WORST_CASE_FACTOR))
        if safe >= 1:
            return Plan(remaining, credit_full, safe, amount, amount, False)
        return Plan(remaining, credit_full, 1, amount, shrunk(remaining), False)

    full = math.floor(remaining / credit_full)
    rest = remaining - full * credit_full
    if rest <= 0:
        return Plan(remaining, credit_full, full, amount, amount, True)
    last = shrunk(rest)
    return Plan(remaining, credit_full, full + 1, amount, last, True)


def next_trade_amount(
    *,
    missing: Decimal,
    amount: Decimal,
    credit_full: Decimal,
    min_amount: Decimal,
    learned: bool,
    first_of_batch: bool,
) -> Decimal | None:
    """Size of the next trade given what is still ``missing`` after the credit this batch's
    own fills have already earned (by the model); None: the batch is complete.

    Recomputed before every trade, so price moves during a batch cannot add up to an
    overshoot: the plan's loop count is only the estimate reported to the supervisor.
    """
    if missing <= 0 or credit_full <= 0:
        return None
    factor = ONE if learned else WORST_CASE_FACTOR
    if credit_full * factor <= missing:
        return amount
    if not learned and not first_of_batch:
        return None  # settle and learn before going nearer the target
    a = (missing / credit_full * amount * LAST_TRADE_PAD).quantize(CENT, rounding=ROUND_UP)
    return min(amount, max(min_amount, a))
