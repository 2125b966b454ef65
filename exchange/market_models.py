"""Models of market-data payloads (depth, trades, klines, fee rate, public stream) and of
the account's Alpha score and asset balances: what choosing a token and keeping the
balance rule need, and a model for every captured sample (tests/exchange/test_samples.py).

Every number field says its kind (``exchange.untrusted``): ``AlphaClient`` checks each reply
as it decodes it (NaN, infinities, negatives and absurd magnitudes are a ``BadResponse``
naming the endpoint and the field).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Generic, TypeVar

import msgspec

from exchange.errors import BadResponse
from exchange.models import Amount, Change, Fee, Price, Qty
from exchange.untrusted import SCORE

T = TypeVar("T")
Level = tuple[Qty, Qty]
"""(price, quantity); both checked against the wider quantity bound (one kind per field)."""
ZERO = Decimal(0)
Score = Annotated[Decimal, SCORE]


class FeeRate(msgspec.Struct, rename="camel"):
    """Commission as the exchange writes it: 100 for the 1 bp fee seen in traffic (so in
    millionths); kept as given."""

    buyer_commission: Fee | None = None
    seller_commission: Fee | None = None


class Depth(msgspec.Struct):
    """``fullDepth``: levels ``(price, quantity)``, best first. A real snapshot can be
    crossed for a moment (``full_depth.json`` is), so bid > ask is not an error."""

    symbol: str | None = None
    bids: list[Level] = []
    asks: list[Level] = []
    lastUpdateId: int | None = None
    E: int | None = None
    T: int | None = None

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0][0] if self.asks else None


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


class Kline(msgspec.Struct, frozen=True):
    """One candle of ``klines`` (the official row has 12 fields; the first 7 are these,
    then quote volume and the trade count)."""

    open_time: int
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Qty
    close_time: int
    quote_volume: Amount | None = None
    trades: int | None = None

    @classmethod
    def from_row(cls, row: KlineRow, endpoint: str, index: int) -> Kline:
        """A row already checked by ``decode_data`` (finite, non-negative numbers)."""
        if len(row) < 7:
            where = f"data[{index}]"
            raise BadResponse(f"{where} has {len(row)} fields, not >= 7", endpoint=endpoint)
        num = [Decimal(v) for v in row[:9]]
        return cls(
            open_time=int(num[0]),
            open=num[1],
            high=num[2],
            low=num[3],
            close=num[4],
            volume=num[5],
            close_time=int(num[6]),
            quote_volume=num[7] if len(num) > 7 else None,
            trades=int(num[8]) if len(num) > 8 else None,
        )


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
    """``user-score``: the points of the last 15 UTC days (``days``, newest first, each
    with its balance snapshot and volume) and their sum after airdrop claims."""

    sum_score: Change | None = None  # the 15 days' scores minus 15 per claim: may go below 0
    days: list[ScoreDay] = msgspec.field(default_factory=list, name="list")
    user_spend_list: list[ScoreSpend] = []
    start_datetime: int | None = None
    end_datetime: int | None = None


class AssetBalance(msgspec.Struct, rename="camel"):
    """One asset of ``asset-service/wallet/asset``: USDT (``is_cex_asset``) or an Alpha
    token (``coin_business_type`` ``ALPHA``, ``asset`` its plain symbol), with its
    valuation in the quote asset asked for (USDT)."""

    asset: str
    amount: Qty | None = ZERO
    valuation_amount: Amount | None = None
    asset_name: str | None = None
    is_cex_asset: bool | None = None
    coin_business_type: str | None = None
    chain_id: str | int | None = None
    contract_address: str | None = None

    def __post_init__(self) -> None:
        self.amount = self.amount or ZERO


def eligible_usdt(rows: list[AssetBalance]) -> Decimal:
    """The USDT value of everything listed (USDT and Alpha tokens): what Binance's balance
    rule looks at, as far as this endpoint shows it."""
    return sum((r.valuation_amount or ZERO for r in rows), ZERO)
