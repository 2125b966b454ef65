"""The Alpha Points programme's published rules, in one place (DESIGN.md section 3).

The simulated exchange applies them to its own records, and alphavol uses them to predict
what the exchange will credit: one definition for both, so they cannot drift apart.

- 2025-09-04: a token's volume counts x4 on BSC and x2 on other chains during the 30 days
  after its Alpha listing, x1 after. Days are UTC days: the listing day is day 1, and the
  multiplier drops at the UTC midnight that ends day 30.
- Volume points of a day = floor(log2(that day's reported volume)), 0 below 2 USDT.
- Balance points from the eligible balance snapshot at 23:59:59 UTC: >= 100 USDT 1,
  >= 1,000 2, >= 10,000 3, >= 100,000 4.
- 2025-10-22: a day whose balance snapshot is under 100 USDT earns no volume points.
- Points are summed over the last 15 UTC days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

BOOST_DAYS = 30
BSC_BOOST = 4
OTHER_CHAIN_BOOST = 2
SCORE_WINDOW_DAYS = 15
MIN_BALANCE_FOR_VOLUME_POINTS = Decimal(100)
BALANCE_TIERS: tuple[tuple[Decimal, int], ...] = (
    (Decimal(100_000), 4),
    (Decimal(10_000), 3),
    (Decimal(1_000), 2),
    (Decimal(100), 1),
)
BSC_NAMES = frozenset({"BSC", "BNB", "BNB CHAIN", "BNB SMART CHAIN"})
BSC_CHAIN_ID = "56"


def utc_day_of_ms(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date()


def is_bsc(chain_name: str | None, chain_id: str | int | None = None) -> bool:
    if chain_id is not None and str(chain_id) == BSC_CHAIN_ID:
        return True
    return (chain_name or "").strip().upper() in BSC_NAMES


def boosted_mul_point(chain_name: str | None, chain_id: str | int | None = None) -> int:
    """The multiplier of a token during its first 30 days: 4 on BSC, 2 elsewhere."""
    return BSC_BOOST if is_bsc(chain_name, chain_id) else OTHER_CHAIN_BOOST


def last_boosted_day(listing_ms: int) -> date:
    """The last UTC day on which a token listed at ``listing_ms`` still counts boosted."""
    return utc_day_of_ms(listing_ms) + timedelta(days=BOOST_DAYS - 1)


def mul_point_on(
    day: date, listing_ms: int | None, chain_name: str | None, chain_id: str | int | None = None
) -> int:
    """The multiplier of a token on a UTC ``day`` (1 when the listing time is unknown)."""
    if listing_ms is None:
        return 1
    if utc_day_of_ms(listing_ms) <= day <= last_boosted_day(listing_ms):
        return boosted_mul_point(chain_name, chain_id)
    return 1


def volume_points(volume: Decimal) -> int:
    """floor(log2(volume)), exactly (no float), 0 below 2."""
    if not volume.is_finite() or volume < 2:
        return 0
    # for v >= 1, floor(log2(v)) == floor(log2(floor(v))): an integer's bit length
    return int(volume).bit_length() - 1


def balance_points(balance: Decimal) -> int:
    for floor, points in BALANCE_TIERS:
        if balance >= floor:
            return points
    return 0


def day_points(volume: Decimal, balance: Decimal) -> tuple[int, int]:
    """(balance points, volume points) of one UTC day, with the 100 USDT balance rule."""
    volume_score = volume_points(volume) if balance >= MIN_BALANCE_FOR_VOLUME_POINTS else 0
    return balance_points(balance), volume_score
