"""One account's traded volume per UTC day, as ``today/user-volume`` reports it.

Fills younger than ``lag`` seconds are held back in a deque (the real endpoint lags), and
only settled into per-day buckets when a read finds them old enough: O(1) per fill and
amortised O(1) per read, whatever the number of trades.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

ZERO = Decimal(0)
COUNTING_RULES = ("buy_mul", "buy_nomul", "both_mul")


def utc_day(ts: float) -> date:
    return datetime.fromtimestamp(ts, tz=UTC).date()


@dataclass
class Bucket:
    buy: Decimal = ZERO
    buy_mul: Decimal = ZERO
    sell: Decimal = ZERO
    sell_mul: Decimal = ZERO

    def add(self, side: str, quote: Decimal, mul: int) -> None:
        if side == "BUY":
            self.buy += quote
            self.buy_mul += quote * mul
        else:
            self.sell += quote
            self.sell_mul += quote * mul

    def counted(self, rule: str) -> Decimal:
        if rule == "buy_nomul":
            return self.buy
        if rule == "both_mul":
            return self.buy_mul + self.sell_mul
        return self.buy_mul


class VolumeBook:
    def __init__(self) -> None:
        self._recent: deque[tuple[float, str, str, Decimal, int]] = deque()
        self._settled: dict[tuple[date, str], Bucket] = {}
        self._seeded: dict[tuple[date, str], Decimal] = {}

    def add(self, ts: float, token: str, side: str, quote: Decimal, mul: int) -> None:
        self._recent.append((ts, token, side, quote, mul))

    def _settle(self, now: float, lag: float) -> None:
        recent = self._recent
        while recent and now - recent[0][0] >= lag:
            ts, token, side, quote, mul = recent.popleft()
            self._settled.setdefault((utc_day(ts), token), Bucket()).add(side, quote, mul)

    def seed(self, now: float, token: str, volume: Decimal) -> None:
        """Make today's reported volume of ``token`` exactly ``volume`` (trades add on top)."""
        day = utc_day(now)
        self._recent = deque(
            e for e in self._recent if not (e[1] == token and utc_day(e[0]) == day)
        )
        self._settled.pop((day, token), None)
        self._seeded[(day, token)] = volume

    def reported(self, now: float, lag: float, rule: str) -> dict[str, Decimal]:
        """Today's volume per token as the exchange shows it (lagged, by counting rule)."""
        self._settle(now, lag)
        day = utc_day(now)
        out: dict[str, Decimal] = {}
        for (d, token), amount in self._seeded.items():
            if d == day:
                out[token] = out.get(token, ZERO) + amount
        for (d, token), bucket in self._settled.items():
            if d == day:
                out[token] = out.get(token, ZERO) + bucket.counted(rule)
        return out

    def day_total(self, day: date, rule: str) -> Decimal:
        """The final reported volume of a whole ``day``, all tokens (no lag, read-only)."""
        total = sum((v for (d, _t), v in self._seeded.items() if d == day), ZERO)
        total += sum((b.counted(rule) for (d, _t), b in self._settled.items() if d == day), ZERO)
        pending = Bucket()
        for ts, _token, side, quote, mul in self._recent:
            if utc_day(ts) == day:
                pending.add(side, quote, mul)
        return total + pending.counted(rule)

    def traded(self, now: float) -> dict[str, dict[str, str]]:
        """Today's raw buy/sell quote per token, including unsettled fills (admin view)."""
        day = utc_day(now)
        totals: dict[str, Bucket] = {}
        for (d, token), bucket in self._settled.items():
            if d == day:
                b = totals.setdefault(token, Bucket())
                b.buy += bucket.buy
                b.sell += bucket.sell
        for ts, token, side, quote, mul in self._recent:
            if utc_day(ts) == day:
                totals.setdefault(token, Bucket()).add(side, quote, mul)
        return {t: {"buy": str(b.buy), "sell": str(b.sell)} for t, b in totals.items()}
