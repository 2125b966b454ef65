"""Models of public market-data payloads (depth, trades, klines, fee rate, public stream,
Alpha score). The trading loop does not need them; they exist so every captured sample
has a model (tests/exchange/test_samples.py) and for tools that want to read them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Generic, TypeVar

import msgspec

from exchange.models import Amount, Change, Fee, Price, Qty
from exchange.untrusted import SCORE

T = TypeVar("T")
Level = tuple[Qty, Qty]
"""(price, quantity); both checked against the wider quantity bound (one kind per field)."""


class FeeRate(msgspec.Struct, rename="camel"):
    """Commission as the exchange writes it: 100 for the 1 bp fee seen in traffic (so in
    millionths); kept as given."""

    buyer_commission: Fee | None = None
    seller_commission: Fee | None = None


class Depth(msgspec.Struct):
    symbol: str | None = None
    bids: list[Level] = []
    asks: list[Level] = []
    lastUpdateId: int | None = None
    E: int | None = None
    T: int | None = None


class AggTrade(msgspec.Struct):
    a: int
    p: Price
    q: Qty
    T: int
    f: int | None = None
    l: int | None = None  # noqa: E741 (wire name)
    m: bool | None = None
    e: str | None = None
    E: int | None = None
    s: str | None = None


KlineRow = list[Qty | int]
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
    o: Price
    h: Price
    l: Price  # noqa: E741 (wire name)
    c: Price
    v: Qty
    ot: int | None = None
    ct: int | None = None


class KlineEvent(msgspec.Struct):
    e: str
    k: KlineBar
    ca: str | None = None


class TickerListItem(msgspec.Struct):
    ca: str
    p: Price | None = None
    pc24: Change | None = None
    vol24: Amount | None = None
    t: int | None = None


class TickerListEvent(msgspec.Struct):
    e: str
    d: list[TickerListItem]


class Push(msgspec.Struct, Generic[T]):
    """``{"stream": ..., "data": T}``: any public stream push."""

    stream: str
    data: T


Score = Annotated[Decimal, SCORE]


class ScoreDay(msgspec.Struct, rename="camel"):
    date: str
    total_score: Score | None = None
    balance_score: Score | None = None
    alpha_volume_score: Score | None = None
    balance_snapshot: Amount | None = None
    alpha_volume: Amount | None = None


class ScoreSpend(msgspec.Struct, rename="camel"):
    id: int | str | None = None
    spend_time: int | None = None
    spend_score: Score | None = None
    biz_type: str | None = None


class UserScore(msgspec.Struct, rename="camel"):
    sum_score: Change | None = None  # the 15 days' scores minus 15 per claim: may go below 0
    days: list[ScoreDay] = msgspec.field(default_factory=list, name="list")
    user_spend_list: list[ScoreSpend] = []
