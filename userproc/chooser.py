"""``target_token: auto``: which token is cheapest per credited USDT right now.

What a round trip costs, as a fraction of its buy quote, from the exchange's public data:

* the spread: a marketable buy fills at the ask, the sell at the bid (``fullDepth``);
* the fees: 1 bp a side (DESIGN.md section 3);
* the expected adverse move while the token is held (buy fill -> sell fill): for a random
  walk with volatility sigma per sqrt(second), held ``hold_seconds``,
  E[max(0, -move)] = sigma x sqrt(hold) / sqrt(2 pi); sigma from the one-minute candles
  (Parkinson's high/low estimator).

What a USDT of buys is credited: x mulPoint in the ``reported`` basis (x 1 in ``traded``).
The cost per credited USDT is their ratio, and the cheapest eligible token wins. Tokens are
skipped (each with a reason) when not listed, not trading (BREAK, DELISTED, INIT, offline),
on another chain, under ``min_mul_point``, wider than ``max_spread_percentage``, without
an order book, or moving more within the volatility guard's window than the guard allows
(the strategy would only wait there).

Everything here is pure but ``choose``, which asks ``fetch`` for each shortlisted token's
book and candles, cheapest lower bound first, and stops probing once no remaining token
can beat the best one found (the fees alone bound a token's cost from below).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from config.settings import EffectiveSettings
from exchange.market_models import Depth, Kline
from exchange.models import SymbolFilters, TokenInfo
from userproc.planner import estimate_multiplier

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
FEE_PER_SIDE = Decimal("0.0001")  # 1 bp a side (buy fee in the token, sell fee in USDT)
HOLD_SECONDS = 2.0  # how long a round trip holds the token, buy fill -> sell fill
BAR_SECONDS = 60  # the candles asked for are one-minute bars
SWITCH_MARGIN = Decimal("0.05")  # keep the current token unless another is 5 % cheaper
MAX_PROBES = 12  # tokens whose book and candles are read per choice, at most
SQRT_2PI = Decimal(str(math.sqrt(2 * math.pi)))
PARKINSON = Decimal(4) * Decimal(2).ln()


@dataclass(frozen=True)
class Prefs:
    """What the strategy allows (its settings, flattened)."""

    candidates: tuple[str, ...] = ()
    chains: tuple[str, ...] = ()
    min_mul_point: Decimal = ONE
    max_spread_percentage: Decimal | None = None
    max_moved_percentage: Decimal = Decimal(5)  # the volatility guard's limit
    guard_window_seconds: float = 60.0
    basis: str = "reported"
    hold_seconds: float = HOLD_SECONDS

    @classmethod
    def of(cls, st: EffectiveSettings, guard_window_seconds: float) -> Prefs:
        return cls(
            candidates=tuple(c.upper() for c in st.candidates),
            chains=tuple(c.upper() for c in st.chains),
            min_mul_point=st.min_mul_point,
            max_spread_percentage=st.max_spread_percentage,
            max_moved_percentage=st.max_price_volatility_percentage,
            guard_window_seconds=guard_window_seconds,
            basis=st.volume_basis,
        )

    def bars(self) -> int:
        """Candles that cover the guard's window."""
        return max(1, math.ceil(self.guard_window_seconds / BAR_SECONDS))


@dataclass(frozen=True)
class Listed:
    """A token as the token list and the exchange info show it."""

    token: TokenInfo
    filters: SymbolFilters | None

    @property
    def symbol(self) -> str:
        return self.token.symbol

    @property
    def mul_point(self) -> Decimal:
        return self.token.mul_point or ONE


@dataclass(frozen=True)
class Skip:
    symbol: str
    reason: str
    transient: bool = False  # the market's state (spread, moves, book), not the token's

    def __str__(self) -> str:
        return f"{self.symbol}: {self.reason}"


@dataclass(frozen=True)
class Estimate:
    """The expected cost of one round trip on a token, per credited USDT."""

    listed: Listed
    spread: Decimal  # (ask - bid) / mid
    fees: Decimal  # both sides
    adverse: Decimal  # expected adverse move while held
    moved_percentage: Decimal  # high-low range over the guard's window
    credit_multiplier: Decimal  # credited USDT per USDT bought, in the strategy's basis

    @property
    def symbol(self) -> str:
        return self.listed.symbol

    @property
    def mul_point(self) -> Decimal:
        return self.listed.mul_point

    @property
    def round_trip_cost(self) -> Decimal:
        """USDT lost per USDT of buy quote."""
        return self.spread + self.fees + self.adverse

    @property
    def cost_per_credit(self) -> Decimal:
        """USDT lost per credited USDT of volume: what the choice minimises."""
        return self.round_trip_cost / self.credit_multiplier

    def describe(self) -> str:
        return (
            f"{self.symbol} x{self.mul_point.normalize():f}: expected"
            f" {self.cost_per_credit * 10000:.3f} bp per credited USDT (spread"
            f" {self.spread * 10000:.2f} bp, fees {self.fees * 10000:.2f} bp, adverse move"
            f" {self.adverse * 10000:.2f} bp)"
        )


@dataclass(frozen=True)
class Choice:
    best: Estimate | None
    considered: list[Estimate] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    kept: bool = False  # the current token stayed (another was not cheaper by the margin)

    def why_none(self) -> str:
        shown = "; ".join(str(s) for s in self.skipped[:8]) or "the exchange lists no token"
        more = f" (and {len(self.skipped) - 8} more)" if len(self.skipped) > 8 else ""
        return f"no token to trade: {shown}{more}"


# --------------------------------------------------------------------------- pure parts
def not_trading(item: Listed) -> str | None:
    """Why the token cannot be bought now, or None."""
    t, f = item.token, item.filters
    if f is None:
        return "not in the exchange info"
    if f.status and f.status.upper() != "TRADING":
        return f"not trading ({f.status})"
    if t.offsell:
        return "delisted (offsell)"
    if t.offline:
        return "not trading (offline)"
    return None


def shortlist(listed: Sequence[Listed], prefs: Prefs) -> tuple[list[Listed], list[Skip]]:
    """The tokens worth a look, cheapest possible first, and why the others are not."""
    by_symbol = {x.symbol.upper(): x for x in listed}
    skipped: list[Skip] = []
    if prefs.candidates:
        pool = []
        for c in prefs.candidates:
            if c in by_symbol:
                pool.append(by_symbol[c])
            else:
                skipped.append(Skip(c, "not in the token list"))
    else:
        pool = list(listed)
    keep: list[Listed] = []
    for item in pool:
        why = not_trading(item)
        chain = (item.token.chain_name or "").upper()
        if why is None and prefs.chains and chain not in prefs.chains:
            why = f"on {item.token.chain_name}, not on {', '.join(prefs.chains)}"
        if why is None and item.mul_point < prefs.min_mul_point:
            why = f"mulPoint {item.mul_point} under min_mul_point {prefs.min_mul_point}"
        if why is None:
            keep.append(item)
        else:
            skipped.append(Skip(item.symbol, why))
    keep.sort(key=lambda x: (lower_bound(x, prefs), -(x.token.volume24h or ZERO), x.symbol))
    return keep, skipped


def lower_bound(item: Listed, prefs: Prefs) -> Decimal:
    """No round trip on the token can cost less per credited USDT than its fees."""
    return 2 * FEE_PER_SIDE / estimate_multiplier(prefs.basis, item.mul_point)


def volatility(klines: Sequence[Kline]) -> Decimal:
    """Sigma of the relative price move per sqrt(second), from one-minute candles."""
    seen = [k for k in klines if k.low > 0 and k.high >= k.low]
    if not seen:
        return ZERO
    var = sum(((k.high / k.low).ln() ** 2 for k in seen), ZERO) / PARKINSON / len(seen)
    return (var / BAR_SECONDS).sqrt()


def moved_percentage(klines: Sequence[Kline], bars: int) -> Decimal:
    """The high-low range of the last ``bars`` candles, in % of the low (the guard's measure)."""
    recent = [k for k in klines[-bars:] if k.low > 0]
    if not recent:
        return ZERO
    lo = min(k.low for k in recent)
    hi = max(k.high for k in recent)
    return (hi - lo) / lo * HUNDRED


def estimate(item: Listed, depth: Depth, klines: Sequence[Kline], prefs: Prefs) -> Estimate | Skip:
    bid, ask = depth.best_bid, depth.best_ask
    if not bid or not ask or bid <= 0 or ask <= 0:
        return Skip(item.symbol, "no order book (no bid or no ask)", transient=True)
    mid = (bid + ask) / 2
    spread = abs(ask - bid) / mid  # a crossed snapshot is no cheaper
    limit = prefs.max_spread_percentage
    if limit is not None and spread * HUNDRED > limit:
        return Skip(
            item.symbol,
            f"spread {spread * HUNDRED:.4f}% over max_spread_percentage {limit}",
            transient=True,
        )
    moved = moved_percentage(klines, prefs.bars())
    if moved > prefs.max_moved_percentage:
        return Skip(
            item.symbol,
            f"too volatile: moved {moved:.2f}% (the guard allows {prefs.max_moved_percentage}%)",
        )
    hold = Decimal(str(prefs.hold_seconds)).sqrt()
    return Estimate(
        listed=item,
        spread=spread,
        fees=2 * FEE_PER_SIDE,
        adverse=volatility(klines) * hold / SQRT_2PI,
        moved_percentage=moved,
        credit_multiplier=estimate_multiplier(prefs.basis, item.mul_point),
    )


def pick(estimates: Sequence[Estimate], current: str | None = None) -> tuple[Estimate | None, bool]:
    """The cheapest estimate (ties: the higher mulPoint, then the name); the current token
    stays unless another is cheaper by ``SWITCH_MARGIN``. Returns (choice, kept)."""
    if not estimates:
        return None, False
    best = min(estimates, key=lambda e: (e.cost_per_credit, -e.mul_point, e.symbol))
    if current is not None and best.symbol != current:
        cur = next((e for e in estimates if e.symbol == current), None)
        if cur is not None and cur.cost_per_credit <= best.cost_per_credit * (ONE + SWITCH_MARGIN):
            return cur, True
    return best, False


# --------------------------------------------------------------------------- the driver
Fetch = Callable[[Listed], Awaitable[tuple[Depth, list[Kline]]]]


async def choose(
    listed: Sequence[Listed],
    fetch: Fetch,
    prefs: Prefs,
    *,
    current: str | None = None,
    max_probes: int = MAX_PROBES,
) -> Choice:
    """Shortlist, then read the book and candles of the tokens that could still be the
    cheapest (``current`` first, so it can be kept), at most ``max_probes`` of them."""
    short, skipped = shortlist(listed, prefs)
    short.sort(key=lambda x: x.symbol != current)  # stable: the rest stay cheapest-first
    considered: list[Estimate] = []
    best: Estimate | None = None
    for n, item in enumerate(short):
        if n >= max_probes:
            skipped.extend(Skip(x.symbol, "not probed (max probes)") for x in short[n:])
            break
        if best is not None and item.symbol != current:
            if lower_bound(item, prefs) >= best.cost_per_credit:
                continue  # its fees alone cost more than the best found
        depth, klines = await fetch(item)
        res = estimate(item, depth, klines, prefs)
        if isinstance(res, Skip):
            skipped.append(res)
            continue
        considered.append(res)
        if best is None or res.cost_per_credit < best.cost_per_credit:
            best = res
    chosen, kept = pick(considered, current)
    return Choice(best=chosen, considered=considered, skipped=skipped, kept=kept)
