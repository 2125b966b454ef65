"""What the sim's ``user-score`` endpoint reports, from its own balances and volumes.

Eligible balance (the sim's choice, documented in docs/CONTRACTS.md): the account's USDT
(free + locked in open buys) plus every Alpha token it holds (free + locked) valued at the
token's best bid, i.e. what the holdings would fetch if sold now. Binance counts Alpha
tokens and exchange-wallet assets; USDT is the only exchange asset the sim has.

The balance of a UTC day is snapshotted when the sim's clock first moves past that day's
end (before anything of the next day happens: every request, fill, price tick and clock
jump closes the day first), so it is the balance at 23:59:59. A day is scored once it is
closed; today is not listed until tomorrow, as on the real page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from exchange.points import SCORE_WINDOW_DAYS, day_points
from exchange.sim.accounts import Account
from exchange.sim.numbers import EIGHT, ZERO, plain


def eligible_balance(acc: Account, bids: Mapping[str, Decimal]) -> Decimal:
    """USDT plus Alpha tokens at their bid (keys of ``bids`` are alpha ids)."""
    total = ZERO
    for asset, b in acc.balances.items():
        amount = b.free + b.locked
        if asset == "USDT":
            total += amount
        elif asset in bids:
            total += amount * bids[asset]
    return total


def close_days(accounts: Iterable[Account], days: list[date], bids: Mapping[str, Decimal]):
    """Record each account's balance as the snapshot of ``days`` (all ended just now)."""
    kept = days[-SCORE_WINDOW_DAYS:]
    for acc in accounts:
        value = eligible_balance(acc, bids)
        for d in kept:
            acc.balance_snapshots[d] = value
        if len(acc.balance_snapshots) > SCORE_WINDOW_DAYS + 1:
            for d in sorted(acc.balance_snapshots)[: -SCORE_WINDOW_DAYS - 1]:
                del acc.balance_snapshots[d]


def _ms(day: date) -> int:
    return int(datetime.combine(day, time(0), tzinfo=UTC).timestamp() * 1000)


def user_score(acc: Account, today: date, volume_of_day) -> dict[str, Any]:
    """The ``data`` of ``user-score``: the last 15 closed UTC days, newest first.

    ``volume_of_day(day)`` is the day's final reported volume (all tokens, multiplied).
    """
    first = today - timedelta(days=SCORE_WINDOW_DAYS)
    rows = []
    total = 0
    for k in range(1, SCORE_WINDOW_DAYS + 1):
        day = today - timedelta(days=k)
        balance = acc.balance_snapshots.get(day)
        if balance is None:  # the account did not exist yet at the end of that day
            continue
        volume = volume_of_day(day)
        balance_score, volume_score = day_points(volume, balance)
        total += balance_score + volume_score
        rows.append(
            {
                "date": day.isoformat(),
                "scoreTime": None,
                "totalScore": str(balance_score + volume_score),
                "balanceScore": str(balance_score),
                "alphaVolumeScore": str(volume_score),
                "balanceSnapshot": plain(balance),
                "alphaVolume": format(volume.quantize(EIGHT), "f"),
            }
        )
    return {
        "isPass": None,
        "sumScore": str(total),
        "startDatetime": _ms(first),
        "endDatetime": _ms(today - timedelta(days=1)),
        "list": rows,
        "userSpendList": [],
    }
