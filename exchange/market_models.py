"""Models of public market-data payloads (depth, trades, klines, fee rate, public stream,
Alpha score). The trading loop does not need them; they exist so every captured sample
has a model (tests/exchange/test_samples.py) and for tools that want to read them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")
Level = tuple[Decimal, Decimal]


class FeeRate(msgspec.Struct, rename="camel"):
    """Commission as the exchange writes it: 100 for the 1 bp fee seen in traffic (so in
    millionths); kept as given."""

    buyer_commission: Decimal | None = None
    seller_commission: Decimal | None = None


class Depth(msgspec.Struct):
    symbol: str | None = None
    bids: list[Level] = []
    asks: list[Level] = []
    lastUpdateId: int | None = None
    E: int | None = None
    T: int | None = None


class AggTrade(msgspec.Struct):
    a: int
    p: Decimal
    q: Decimal
    T: int
    f: int | None = None
    l: int | None = None  # noqa: E741 (wire name)
    m: bool | None = None
    e: str | None = None
    E: int | None = None
    s: str | None = None


KlineRow = list[Decimal | int]
"""``[openTime, open, high, low, close, volume, closeTime, ...]`` (numbers as strings)."""


class DepthUpdate(msgspec.Struct):
    e: str
    s: str
    b: list[Level] = []
    a: list[Level] = []
    E: int | None = None
    T: int | None = None
    U: int | None = None
    u: int | None = None
    pu: int | None = None


class KlineBar(msgspec.Struct):
    i: str
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 (wire name)
    c: Decimal
    v: Decimal
    ot: int | None = None
    ct: int | None = None


class KlineEvent(msgspec.Struct):
    e: str
    k: KlineBar
    ca: str | None = None


class TickerListItem(msgspec.Struct):
    ca: str
    p: Decimal | None = None
    pc24: Decimal | None = None
    vol24: Decimal | None = None
    t: int | None = None


class TickerListEvent(msgspec.Struct):
    e: str
    d: list[TickerListItem]


class Push(msgspec.Struct, Generic[T]):
    """``{"stream": ..., "data": T}``: any public stream push."""

    stream: str
    data: T


class ScoreDay(msgspec.Struct, rename="camel"):
    date: str
    total_score: Decimal | None = None
    balance_score: Decimal | None = None
    alpha_volume_score: Decimal | None = None
    balance_snapshot: Decimal | None = None
    alpha_volume: Decimal | None = None


class ScoreSpend(msgspec.Struct, rename="camel"):
    id: int | str | None = None
    spend_time: int | None = None
    spend_score: Decimal | None = None
    biz_type: str | None = None


class UserScore(msgspec.Struct, rename="camel"):
    sum_score: Decimal | None = None
    days: list[ScoreDay] = msgspec.field(default_factory=list, name="list")
    user_spend_list: list[ScoreSpend] = []
