"""The programme's rules (exchange/points.py), checked against real figures."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from exchange.points import balance_points, day_points, mul_point_on, volume_points
from tests.samples import SAMPLES

D = Decimal
LIGHT_LISTED = 1758970800000  # token_list.json: BSC, listed 2025-09-27 11:00 UTC


def test_volume_points_are_floor_log2_without_float_errors() -> None:
    assert [volume_points(D(v)) for v in ("0", "1.99", "2", "3.99", "4")] == [0, 0, 1, 1, 2]
    assert volume_points(D(131071) + D("0.99999999")) == 16
    assert volume_points(D(131072)) == 17
    assert volume_points(D("NaN")) == 0 and volume_points(D(-8)) == 0


def test_the_real_user_score_agrees_with_the_rules() -> None:
    days = json.loads((SAMPLES / "user_score.json").read_text())["data"]["list"]
    for day in days:
        balance, volume = D(day["balanceSnapshot"]), D(day["alphaVolume"])
        assert day_points(volume, balance) == (
            int(day["balanceScore"]),
            int(day["alphaVolumeScore"]),
        ), day["date"]


def test_balance_tiers_and_the_100_usdt_rule() -> None:
    tiers = [balance_points(D(v)) for v in ("99.99", "100", "999", "1000", "10000", "100000")]
    assert tiers == [0, 1, 1, 2, 3, 4]
    assert day_points(D(1024), D("99.99")) == (0, 0)  # no volume points under 100 USDT
    assert day_points(D(1024), D(100)) == (1, 10)


def test_mul_point_is_boosted_for_30_utc_days_from_the_listing_day() -> None:
    assert mul_point_on(date(2025, 9, 26), LIGHT_LISTED, "BSC") == 1  # not listed yet
    assert mul_point_on(date(2025, 9, 27), LIGHT_LISTED, "BSC") == 4  # day 1
    assert mul_point_on(date(2025, 10, 26), LIGHT_LISTED, "BSC") == 4  # day 30
    assert mul_point_on(date(2025, 10, 27), LIGHT_LISTED, "BSC") == 1  # the day after
    assert mul_point_on(date(2025, 10, 1), LIGHT_LISTED, "Sui", "CT_784") == 2
    assert mul_point_on(date(2025, 10, 1), LIGHT_LISTED, None, "56") == 4  # BSC by chain id
    assert mul_point_on(date(2025, 10, 1), None, "BSC") == 1  # listing unknown


def test_the_rule_reproduces_the_real_multipliers() -> None:
    """aggTicker24 was cached on 2025-10-15: KOGE (listed 2024-12) x1, AOP (2025-09-19) x4."""
    tokens = json.loads((SAMPLES / "aggticker24_koge_aop.json").read_text())["data"]
    for t in tokens:
        got = mul_point_on(date(2025, 10, 15), t["listingTime"], t["chainName"], t["chainId"])
        assert got == t["mulPoint"], t["symbol"]
