"""Models of market-data payloads (depth, trades, klines, fee rate, public stream) and of
the account's Alpha score and asset balances: what choosing a token and keeping the
balance rule need, and a model for every captured sample (tests/exchange/test_samples.py).

``AlphaClient`` checks every number of these replies with ``sane`` (NaN, infinities,
negatives and absurd magnitudes are a ``BadResponse`` naming the endpoint and the field).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Generic, TypeVar

import msgspec

from exchange.errors import BadResponse

T = TypeVar("T")
Level = tuple[Decimal, Decimal]
ZERO = Decimal(0)
MAX_AMOUNT = Decimal("1e15")  # above any real price, quantity, balance or daily volume
MAX_SCORE = Decimal(100_000)  # Alpha points: a day earns a few dozen


def sane(
    value: Decimal | None,
    endpoint: str,
    field: str,
    *,
    positive: bool = False,
    top: Decimal = MAX_AMOUNT,
) -> Decimal | None:
    """``value`` unless it is NaN, infinite, negative (or 0 when ``positive``) or above
    ``top``: then ``BadResponse`` naming ``endpoint`` and ``field``. None passes."""
    if value is None:
        return None
    if not value.is_finite() or value < 0 or value > top or (positive and value == 0):
        raise BadResponse(f"{field} is not a sane number ({value})", endpoint=endpoint)
    return value


class FeeRate(msgspec.Struct, rename="camel"):
    """Commission as the exchange writes it: 100 for the 1 bp fee seen in traffic (so in
    millionths); kept as given."""

    buyer_commission: Decimal | None = None
    seller_commission: Decimal | None = None


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

    def check(self, endpoint: str) -> Depth:
        for side in ("bids", "asks"):
            for i, (price, qty) in enumerate(getattr(self, side)):
                sane(price, endpoint, f"{side}[{i}].price", positive=True)
                sane(qty, endpoint, f"{side}[{i}].quantity")
        return self


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


class Kline(msgspec.Struct, frozen=True):
    """One candle of ``klines`` (the official row has 12 fields; the first 7 are these,
    then quote volume and the trade count)."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time: int
    quote_volume: Decimal | None = None
    trades: int | None = None

    @classmethod
    def from_row(cls, row: KlineRow, endpoint: str, index: int) -> Kline:
        where = f"data[{index}]"
        if len(row) < 7:
            raise BadResponse(f"{where} has {len(row)} fields, not >= 7", endpoint=endpoint)
        num = [Decimal(v) for v in row[:9]]
        prices = [
            sane(num[k], endpoint, f"{where}.{name}", positive=True)
            for k, name in ((1, "open"), (2, "high"), (3, "low"), (4, "close"))
        ]
        for k, name in ((0, "openTime"), (6, "closeTime")):
            sane(num[k], endpoint, f"{where}.{name}", top=Decimal(10**14))
            if num[k] != num[k].to_integral_value():
                raise BadResponse(f"{where}.{name} is not a time ({num[k]})", endpoint=endpoint)
        extra = num[7:9]
        return cls(
            open_time=int(num[0]),
            open=prices[0],
            high=prices[1],
            low=prices[2],
            close=prices[3],
            volume=sane(num[5], endpoint, f"{where}.volume"),
            close_time=int(num[6]),
            quote_volume=sane(extra[0], endpoint, f"{where}.quoteVolume") if extra else None,
            trades=int(sane(extra[1], endpoint, f"{where}.count")) if len(extra) > 1 else None,
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
    """``user-score``: the points of the last 15 UTC days (``days``, newest first, each
    with its balance snapshot and volume) and their sum after airdrop claims."""

    sum_score: Decimal | None = None
    days: list[ScoreDay] = msgspec.field(default_factory=list, name="list")
    user_spend_list: list[ScoreSpend] = []
    start_datetime: int | None = None
    end_datetime: int | None = None

    def check(self, endpoint: str) -> UserScore:
        sane(self.sum_score, endpoint, "sumScore", top=MAX_SCORE)
        for i, d in enumerate(self.days):
            for name in ("total_score", "balance_score", "alpha_volume_score"):
                sane(getattr(d, name), endpoint, f"list[{i}].{_camel(name)}", top=MAX_SCORE)
            sane(d.balance_snapshot, endpoint, f"list[{i}].balanceSnapshot")
            sane(d.alpha_volume, endpoint, f"list[{i}].alphaVolume")
        for i, spend in enumerate(self.user_spend_list):
            sane(spend.spend_score, endpoint, f"userSpendList[{i}].spendScore", top=MAX_SCORE)
        return self


class AssetBalance(msgspec.Struct, rename="camel"):
    """One asset of ``asset-service/wallet/asset``: USDT (``is_cex_asset``) or an Alpha
    token (``coin_business_type`` ``ALPHA``, ``asset`` its plain symbol), with its
    valuation in the quote asset asked for (USDT)."""

    asset: str
    amount: Decimal | None = ZERO
    valuation_amount: Decimal | None = None
    asset_name: str | None = None
    is_cex_asset: bool | None = None
    coin_business_type: str | None = None
    chain_id: str | int | None = None
    contract_address: str | None = None

    def __post_init__(self) -> None:
        self.amount = self.amount or ZERO


def check_balances(rows: list[AssetBalance], endpoint: str) -> list[AssetBalance]:
    for i, row in enumerate(rows):
        sane(row.amount, endpoint, f"data[{i}].amount")
        sane(row.valuation_amount, endpoint, f"data[{i}].valuationAmount")
    return rows


def eligible_usdt(rows: list[AssetBalance]) -> Decimal:
    """The USDT value of everything listed (USDT and Alpha tokens): what Binance's balance
    rule looks at, as far as this endpoint shows it."""
    return sum((r.valuation_amount or ZERO for r in rows), ZERO)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)
