"""The 100 USDT balance rule (since 2025-10-22): a UTC day whose eligible balance at
23:59:59 is under 100 USDT earns no volume points, so every round trip of that day is
money spent for nothing.

Which figure: the sum of the USDT valuations that ``asset-service/wallet/asset`` lists
(USDT plus every Alpha token, valued at what selling it fetches: the simulator uses the
best bid), i.e. ``exchange.market_models.eligible_usdt``. It is the closest public figure
to the balance Binance snapshots (Binance does not publish its exact formula), and it is
the one that round trips spend: each costs the spread and fees.

Before each batch (so before the day's first trade too) the balance is read again, unless
an earlier read today showed room for the whole remaining target at the worst cost:

* under ``min_balance_usdt`` already: nothing is traded today;
* otherwise a batch may spend at most what keeps the day's end above the floor, its
  expected cost counted twice (``SAFETY``: stopping a little early costs a few points'
  worth of volume at most, ending the day under the floor costs the whole day). The batch
  is cut to that much volume; when not even one more round trip fits, the user stops for
  the day. Volume already traded counts: the day ends above the floor with the points of
  what was traded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from config.settings import EffectiveSettings
from exchange.market_models import eligible_usdt
from userproc.errors import LowBalance
from userproc.session import Session

SAFETY = Decimal(2)
CENT = Decimal("0.01")
WORST_COST = Decimal("0.01")  # per credited USDT: no token worth trading costs more


def under_floor(eligible: Decimal, floor: Decimal) -> str:
    return (
        f"eligible balance {eligible.quantize(CENT)} USDT (USDT + Alpha tokens at the bid) is"
        f" under min_balance_usdt {floor}: a day that ends under it earns no volume points,"
        " so nothing is traded today; add USDT to the Alpha wallet (or set"
        " min_balance_usdt: 0)"
    )


def no_room(eligible: Decimal, floor: Decimal, trade_cost: Decimal) -> str:
    return (
        f"eligible balance {eligible.quantize(CENT)} USDT: one more round trip (expected cost"
        f" {trade_cost.quantize(Decimal('0.0001'))} USDT, counted twice for safety) would end"
        f" the day too near min_balance_usdt {floor}, and a day that ends under it earns no"
        " volume points; nothing more is traded today"
    )


def allowed_volume(
    eligible: Decimal,
    floor: Decimal,
    remaining: Decimal,
    cost_per_credit: Decimal,
    trade_credit: Decimal,
) -> Decimal:
    """The volume (in the strategy's basis) the next batch may trade so that the day ends
    above ``floor``; raises ``LowBalance`` saying why when not even one trade of
    ``trade_credit`` fits. Pure."""
    if eligible < floor:
        raise LowBalance(under_floor(eligible, floor))
    room = (eligible - floor) / SAFETY / cost_per_credit
    if room < trade_credit:
        raise LowBalance(no_room(eligible, floor, trade_credit * cost_per_credit))
    return min(max(remaining, Decimal(0)), room)


async def balance_allows(
    s: Session,
    st: EffectiveSettings,
    remaining: Decimal,
    trade_credit: Decimal,
    cost_per_credit: Callable[[], Awaitable[Decimal]],
) -> Decimal:
    """Read the balance and return how much of ``remaining`` the next batch may trade
    (``allowed_volume``); ``cost_per_credit`` is asked only when the balance is near
    enough the floor for it to matter (it may read the token's book)."""
    floor = st.min_balance_usdt
    if floor <= 0:
        return remaining
    day = s.clock.utc_day()
    if s.balance_clear.get(st.strategy_id) == day:
        return remaining  # an earlier read today covers all of it (see below)
    eligible = eligible_usdt(await s.call("balances", s.client.balances))
    if eligible >= floor and eligible - SAFETY * max(remaining, Decimal(0)) * WORST_COST >= floor:
        # far enough above the floor whatever the token costs; and it stays so for the
        # rest of the day: trading V of the remaining R lowers the balance by at most
        # V x WORST_COST, while the margin needed drops by 2 x V x WORST_COST
        s.balance_clear[st.strategy_id] = day
        return remaining
    per = await cost_per_credit() if eligible >= floor else WORST_COST
    return allowed_volume(eligible, floor, remaining, per, trade_credit)
