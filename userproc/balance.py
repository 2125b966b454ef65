"""The 100 USDT balance rule (since 2025-10-22): a UTC day whose eligible balance at
23:59:59 is under 100 USDT earns no volume points, so every round trip of that day is
money spent for nothing.

Which figure: the sum of the USDT valuations that ``asset-service/wallet/asset`` lists
(USDT plus every Alpha token, valued at what selling it fetches: the simulator uses the
best bid), i.e. ``exchange.market_models.eligible_usdt``. It is the closest public figure
to the balance Binance snapshots (Binance does not publish its exact formula), and it is
the one that round trips spend: each costs the spread and fees, so the balance at the end
of the day is about the balance now minus what today's remaining trading is expected to
cost. That expectation is doubled (``SAFETY``): being stopped a little early costs nothing,
ending the day under the floor costs the whole day.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from config.settings import EffectiveSettings
from exchange.market_models import eligible_usdt
from userproc.errors import LowBalance

if TYPE_CHECKING:
    from userproc.session import Session

SAFETY = Decimal(2)
CENT = Decimal("0.01")
WORST_COST = Decimal("0.01")  # per credited USDT: no token worth trading costs more


def floor_problem(eligible: Decimal, floor: Decimal, expected_cost: Decimal) -> str | None:
    """Why this account must not trade on today (None: it may). ``expected_cost``: USDT
    the rest of today's trading is expected to lose."""
    if floor <= 0:
        return None
    shown = eligible.quantize(CENT)
    if eligible < floor:
        return (
            f"eligible balance {shown} USDT (USDT + Alpha tokens at the bid) is under"
            f" min_balance_usdt {floor}: a day that ends under it earns no volume points,"
            " so nothing is traded today; add USDT to the Alpha wallet (or set"
            " min_balance_usdt: 0)"
        )
    end = eligible - SAFETY * expected_cost
    if end < floor:
        return (
            f"eligible balance {shown} USDT would end today at about {end.quantize(CENT)}"
            f" USDT after the rest of today's trading (expected cost"
            f" {expected_cost.quantize(CENT)} USDT, counted twice for safety), under"
            f" min_balance_usdt {floor}: that day would earn no volume points, so nothing"
            " more is traded today"
        )
    return None


async def check_balance_floor(
    s: Session,
    st: EffectiveSettings,
    remaining: Decimal,
    cost_per_credit: Callable[[], Awaitable[Decimal]],
) -> None:
    """Before the first trade of the day and before each batch: read the balance, and
    raise ``LowBalance`` (the user stops for the day, saying why) if trading on would end
    the day under ``min_balance_usdt``. ``remaining``: the strategy's volume still to do;
    ``cost_per_credit`` is asked only when the balance is near enough the floor for it to
    matter (it may read the token's book)."""
    floor = st.min_balance_usdt
    if floor <= 0:
        return
    eligible = eligible_usdt(await s.call("balances", s.client.balances))
    todo = max(remaining, Decimal(0))
    if eligible >= floor and eligible - SAFETY * todo * WORST_COST >= floor:
        return  # far enough above the floor whatever the token costs
    cost = todo * await cost_per_credit() if eligible >= floor else Decimal(0)
    why = floor_problem(eligible, floor, cost)
    if why:
        raise LowBalance(why)
