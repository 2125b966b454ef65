"""msgspec models of the Binance Alpha payloads the trading code uses.

Lenient where the exchange is: numbers arrive as JSON numbers or strings (both decode to an
exact ``Decimal``, never through float), fields are null or missing (defaults), ids are
numbers in one place and strings in another (always ``str`` here). Field names follow
docs/CONTRACTS.md; the wire names are mapped with ``rename``/``name=``.

Order-placing request bodies live here too (``OtoOrderRequest``, ``LimitOrderRequest``);
``exchange.ordermath`` is the only place that builds them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import msgspec

from exchange import untrusted as u
from exchange.errors import BadResponse

ZERO = Decimal(0)
Id = Annotated[int | str | None, u.ID]
"""An id as the exchange sends it; normalised to ``str | None`` in ``__post_init__``."""

# Every number the exchange sends carries its kind; ``exchange.untrusted`` holds the limits.
Price = Annotated[Decimal, u.PRICE]
Qty = Annotated[Decimal, u.QUANTITY]
Amount = Annotated[Decimal, u.AMOUNT]
Fee = Annotated[Decimal, u.FEE]
MulPoint = Annotated[Decimal, u.MUL_POINT]
FilterValue = Annotated[Decimal, u.FILTER]
Change = Annotated[Decimal, u.CHANGE]


def _id(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, int):
        return str(v)
    return v or None


def _list_id(v: Any) -> str | None:
    """Order-list id; the exchange writes ``"-1"`` for "not part of a list"."""
    s = _id(v)
    return None if s in (None, "-1") else s


def _ms(*vals: int | None) -> int | None:
    """First non-zero timestamp (the exchange writes 0 for "not set")."""
    for v in vals:
        if v:
            return v
    return None


# --------------------------------------------------------------------------- envelope


class Envelope(msgspec.Struct, rename="camel"):
    """``{"code":"000000","message":null,"messageDetail":null,"data":...,"success":true}``.

    Some captures omit everything but ``data``; a missing ``success`` counts as success
    when the code is missing or ``000000``.
    """

    # any field but code and success may be null, missing, a string or an object (or
    # anything else a broken server writes): kept raw, read only when needed
    code: str | int | None = None
    message: msgspec.Raw = msgspec.Raw(b"null")
    message_detail: msgspec.Raw = msgspec.Raw(b"null")
    data: msgspec.Raw = msgspec.Raw(b"null")
    success: bool | None = None
    total: msgspec.Raw = msgspec.Raw(b"null")

    @property
    def ok(self) -> bool:
        if self.success is not None:
            return self.success
        return self.code is None or str(self.code) == "000000"

    @property
    def code_str(self) -> str | None:
        return None if self.code is None else str(self.code)

    @property
    def text(self) -> str | None:
        """The exchange's own words: ``message``, else ``messageDetail``, when a string."""
        for raw in (self.message, self.message_detail):
            v = _raw_str(raw)
            if v:
                return v
        return None


_str_or_other = msgspec.json.Decoder(str | None)


def _raw_str(raw: msgspec.Raw) -> str | None:
    """The stripped string a raw JSON value holds; None for anything else."""
    try:
        v = _str_or_other.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if not v:
        return None
    return v.strip() or None


# --------------------------------------------------------------------------- public


class TokenInfo(msgspec.Struct, rename="camel"):
    """One entry of the token list / aggTicker24 (same shape)."""

    alpha_id: str
    symbol: str
    chain_name: str | None = None
    mul_point: MulPoint = Decimal(1)
    price: Price | None = None
    name: str | None = None
    token_id: str | None = None
    chain_id: str | int | None = None
    contract_address: str | None = None
    decimals: int | None = None
    trade_decimal: int | None = None
    listing_time: int | None = None
    offline: bool | None = None
    offsell: bool | None = None
    volume24h: Amount | None = None
    percent_change24h: Change | None = None

    @property
    def pair(self) -> str:
        """The trading symbol used by order endpoints, e.g. ``ALPHA_22USDT``."""
        return f"{self.alpha_id}USDT"


def find_token(tokens: list[TokenInfo], name: str) -> TokenInfo | None:
    """The token with this plain symbol (``KOGE``), else this alphaId (``ALPHA_22``) or
    pair (``ALPHA_22USDT``), case aside; None if the list has none."""
    want = name.upper()
    for t in tokens:
        if t.symbol.upper() == want:
            return t
    for t in tokens:
        if t.alpha_id.upper() == want or t.pair.upper() == want:
            return t
    return None


class Ticker(msgspec.Struct, rename="camel"):
    symbol: str
    last_price: Price
    price_change: Change | None = None
    price_change_percent: Change | None = None
    weighted_avg_price: Price | None = None
    high_price: Price | None = None
    low_price: Price | None = None
    open_price: Price | None = None
    volume: Qty | None = None
    quote_volume: Amount | None = None
    open_time: int | None = None
    close_time: int | None = None


class RawFilter(msgspec.Struct, rename="camel"):
    filter_type: str
    min_price: FilterValue | None = None
    max_price: FilterValue | None = None
    tick_size: FilterValue | None = None
    step_size: FilterValue | None = None
    max_qty: FilterValue | None = None
    min_qty: FilterValue | None = None
    limit: int | None = None
    min_notional: FilterValue | None = None
    max_notional: FilterValue | None = None
    multiplier_down: FilterValue | None = None
    multiplier_up: FilterValue | None = None


class RawSymbol(msgspec.Struct, rename="camel"):
    symbol: str
    base_asset: str | None = None
    quote_asset: str | None = None
    status: str | None = None
    price_precision: int | None = None
    quantity_precision: int | None = None
    filters: list[RawFilter] | None = None


class SymbolFilters(msgspec.Struct, frozen=True, kw_only=True):
    """The trading rules of one symbol, flattened from its filter list.

    Any of them may be ``None`` when the exchange left it out; ``exchange.ordermath`` then
    falls back to the symbol's precision (for tick/step) or skips the check.
    """

    symbol: str
    base_asset: str
    quote_asset: str = "USDT"
    tick_size: Decimal | None = None
    step_size: Decimal | None = None
    min_qty: Decimal | None = None
    max_qty: Decimal | None = None
    min_notional: Decimal | None = None
    max_open_orders: int | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    max_notional: Decimal | None = None
    price_precision: int | None = None
    quantity_precision: int | None = None
    status: str | None = None

    @classmethod
    def from_raw(cls, raw: RawSymbol) -> SymbolFilters:
        by_type = {f.filter_type: f for f in raw.filters or ()}

        def get(ftype: str, attr: str) -> Any:
            f = by_type.get(ftype)
            return getattr(f, attr) if f is not None else None

        min_notional = get("MIN_NOTIONAL", "min_notional") or get("NOTIONAL", "min_notional")
        max_notional = get("MAX_NOTIONAL", "max_notional") or get("NOTIONAL", "max_notional")
        base = raw.base_asset or (raw.symbol.removesuffix(raw.quote_asset or "USDT"))
        return cls(
            symbol=raw.symbol,
            base_asset=base,
            quote_asset=raw.quote_asset or "USDT",
            tick_size=get("PRICE_FILTER", "tick_size"),
            step_size=get("LOT_SIZE", "step_size"),
            min_qty=get("LOT_SIZE", "min_qty"),
            max_qty=get("LOT_SIZE", "max_qty"),
            min_notional=min_notional,
            max_open_orders=get("MAX_NUM_ORDERS", "limit"),
            min_price=get("PRICE_FILTER", "min_price"),
            max_price=get("PRICE_FILTER", "max_price"),
            max_notional=max_notional,
            price_precision=raw.price_precision,
            quantity_precision=raw.quantity_precision,
            status=raw.status,
        )


class RawExchangeInfo(msgspec.Struct):
    symbols: list[RawSymbol] | None = None


class ExchangeInfo(msgspec.Struct, frozen=True):
    symbols: list[SymbolFilters]

    def get(self, symbol: str) -> SymbolFilters:
        """Filters by trading symbol (``ALPHA_22USDT``) or base asset (``ALPHA_22``).

        Raises ``KeyError`` naming the symbol when the exchange does not list it.
        """
        for s in self.symbols:
            if s.symbol == symbol or s.base_asset == symbol:
                return s
        raise KeyError(f"symbol {symbol!r} is not in the exchange info")


# --------------------------------------------------------------------------- private


class RawVolumeEntry(msgspec.Struct, rename="camel"):
    token_name: str | None = None
    volume: Amount | None = None


class RawUserVolume(msgspec.Struct, rename="camel"):
    total_volume: Amount | None = None
    trade_volume_info_list: list[RawVolumeEntry] | None = None


class UserVolume(msgspec.Struct, frozen=True):
    """Today's (UTC) volume as the exchange reports it: already multiplied by mulPoint."""

    total_volume: Decimal
    per_token: dict[str, Decimal]

    @classmethod
    def from_raw(cls, raw: RawUserVolume) -> UserVolume:
        per: dict[str, Decimal] = {}
        for e in raw.trade_volume_info_list or ():
            if e.token_name:
                per[e.token_name] = per.get(e.token_name, ZERO) + (e.volume or ZERO)
        total = raw.total_volume if raw.total_volume is not None else sum(per.values(), ZERO)
        return cls(total_volume=total, per_token=per)

    def volume_of(self, token: str) -> Decimal:
        """Volume of a plain symbol (``AOP``); 0 if absent. Case-insensitive."""
        if token in self.per_token:
            return self.per_token[token]
        t = token.upper()
        return sum((v for k, v in self.per_token.items() if k.upper() == t), ZERO)


OrderId = Annotated[int | str, u.ID]
"""The ``data`` of a plain order's reply: its id, a number or a string."""


class OtoPlaced(msgspec.Struct, rename="camel"):
    working_order_id: Id
    pending_order_id: Id

    def __post_init__(self) -> None:
        self.working_order_id = _id(self.working_order_id)
        self.pending_order_id = _id(self.pending_order_id)
        if self.working_order_id is None or self.pending_order_id is None:
            raise msgspec.ValidationError("workingOrderId/pendingOrderId missing")


class HistoryOrder(msgspec.Struct, rename="camel"):
    """A row of order history (and, same shape, of open orders).

    ``order_list_id`` is ``None`` for orders outside an OTO (the exchange writes ``-1``);
    ``contingency_position`` is ``OTO_WORKING`` / ``OTO_PENDING`` / ``None``; ``time_ms`` is
    the first non-zero of ``time``, ``workingTime``, ``updateTime``.
    """

    order_id: Id
    symbol: str
    side: str
    status: str
    price: Price | None = None
    orig_qty: Qty | None = ZERO
    executed_qty: Qty | None = ZERO
    cum_quote: Amount | None = ZERO
    avg_price: Price | None = None
    order_list_id: Id = None
    contingency_type: str | None = None
    contingency_position: str | None = msgspec.field(default=None, name="contingencyOrderPosition")
    type: str | None = None
    base_asset: str | None = None
    quote_asset: str | None = None
    time: int | None = None
    working_time: int | None = None
    update_time: int | None = None

    def __post_init__(self) -> None:
        self.order_id = _id(self.order_id)
        if self.order_id is None:
            raise msgspec.ValidationError("orderId missing")
        self.order_list_id = _list_id(self.order_list_id)
        self.orig_qty = self.orig_qty or ZERO
        self.executed_qty = self.executed_qty or ZERO
        self.cum_quote = self.cum_quote or ZERO

    @property
    def time_ms(self) -> int | None:
        return _ms(self.time, self.working_time, self.update_time)


class OpenOrder(HistoryOrder):
    """An open order (``get-open-order``); same fields as a history row."""


class UserTrade(msgspec.Struct, rename="camel"):
    order_id: Id
    trade_id: Id
    side: str
    price: Price
    qty: Qty
    quote_qty: Amount | None = ZERO
    commission: Fee | None = ZERO
    commission_asset: str | None = None
    time_ms: int | None = msgspec.field(default=None, name="time")
    symbol: str | None = None
    buyer: bool | None = None
    id: Id = None

    def __post_init__(self) -> None:
        self.order_id = _id(self.order_id)
        self.trade_id = _id(self.trade_id) or _id(self.id)
        self.id = _id(self.id)
        self.quote_qty = self.quote_qty or ZERO
        self.commission = self.commission or ZERO
        if self.order_id is None:
            raise msgspec.ValidationError("orderId missing")


class WalletBalance(msgspec.Struct):
    """A token in the Alpha wallet: ``asset`` is the alphaId (``ALPHA_22``), ``symbol`` the
    plain symbol (``KOGE``)."""

    asset: str | None = msgspec.field(default=None, name="tokenId")
    symbol: str | None = None
    free: Qty | None = ZERO
    locked: Qty | None = ZERO
    freeze: Qty | None = ZERO
    amount: Qty | None = None
    name: str | None = None
    valuation: Amount | None = None

    def __post_init__(self) -> None:
        self.free = self.free or ZERO
        self.locked = self.locked or ZERO
        self.freeze = self.freeze or ZERO


class RawWallet(msgspec.Struct, rename="camel"):
    total_valuation: Amount | None = None
    items: list[WalletBalance] | None = msgspec.field(default=None, name="list")


# --------------------------------------------------------------------------- stream


class ExecutionReport(msgspec.Struct):
    """One ``executionReport`` of the user stream (single-letter wire names).

    ``qty`` is ``q`` (0 for an OTO's pending sell until the buy fills), ``cum_qty`` and
    ``cum_quote`` are cumulative (``z``/``Z``), ``fee``/``fee_asset`` belong to the last
    fill (``n``/``N``, 0/None when there was none).
    """

    symbol: str = msgspec.field(name="s")
    side: str = msgspec.field(name="S")
    status: str = msgspec.field(name="X")
    order_id: Id = msgspec.field(name="i")
    order_list_id: Id = msgspec.field(default=None, name="il")
    contingency_position: str | None = msgspec.field(default=None, name="cp")
    qty: Qty | None = msgspec.field(default=ZERO, name="q")
    price: Price | None = msgspec.field(default=ZERO, name="p")
    last_price: Price | None = msgspec.field(default=ZERO, name="L")
    last_qty: Qty | None = msgspec.field(default=ZERO, name="l")
    cum_qty: Qty | None = msgspec.field(default=ZERO, name="z")
    cum_quote: Amount | None = msgspec.field(default=ZERO, name="Z")
    fee: Fee | None = msgspec.field(default=ZERO, name="n")
    fee_asset: str | None = msgspec.field(default=None, name="N")
    event_time_ms: int | None = msgspec.field(default=None, name="E")
    trade_time_ms: int | None = msgspec.field(default=None, name="T")
    client_order_id: str | None = msgspec.field(default=None, name="c")
    exec_type: str | None = msgspec.field(default=None, name="x")
    order_type: str | None = msgspec.field(default=None, name="o")
    contingency_type: str | None = msgspec.field(default=None, name="ct")
    trade_id: Id = msgspec.field(default=None, name="t")
    event_type: str | None = msgspec.field(default=None, name="e")

    def __post_init__(self) -> None:
        self.order_id = _id(self.order_id)
        self.order_list_id = _list_id(self.order_list_id)
        if self.trade_id is not None:
            self.trade_id = _id(self.trade_id)
        # null numbers read as 0 (the exchange writes null where nothing happened yet)
        self.qty = self.qty or ZERO
        self.price = self.price or ZERO
        self.last_price = self.last_price or ZERO
        self.last_qty = self.last_qty or ZERO
        self.cum_qty = self.cum_qty or ZERO
        self.cum_quote = self.cum_quote or ZERO
        self.fee = self.fee or ZERO


class StreamMessage(msgspec.Struct):
    """A frame of the user stream: a push (``stream``/``data``) or a reply (``result``/``id``)."""

    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw()  # empty when the frame has no ``data``
    result: Any = None
    id: int | str | None = None
    error: Any = None


class SubscribeRequest(msgspec.Struct):
    method: str
    params: list[str]
    id: int


class SubscribeAck(msgspec.Struct):
    id: int | str | None = None
    result: Any = None


class StreamPush(msgspec.Struct):
    """A push whose ``data`` is an execution report (used to decode the samples)."""

    stream: str
    data: ExecutionReport


# --------------------------------------------------------------------------- requests


class PaymentDetail(msgspec.Struct, rename="camel"):
    amount: Amount
    payment_wallet_type: str


class OtoOrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What ``plan_oto`` decided; ``to_body()`` writes it the way the browser does."""

    symbol: str  # ALPHA_22USDT (for lookups; not part of the body)
    base_asset: str
    quote_asset: str
    working_price: Decimal
    working_quantity: Decimal
    payment_amount: Decimal
    pending_price: Decimal
    working_side: str = "BUY"
    pending_type: str = "LIMIT"

    def to_body(self) -> bytes:
        from exchange.ordermath import json_number, json_string

        return msgspec.json.encode(
            {
                "baseAsset": self.base_asset,
                "quoteAsset": self.quote_asset,
                "workingSide": self.working_side,
                "workingPrice": json_number(self.working_price),
                "workingQuantity": json_number(self.working_quantity),
                "paymentDetails": [
                    {"amount": json_string(self.payment_amount), "paymentWalletType": "CARD"}
                ],
                "pendingPrice": json_number(self.pending_price),
                "pendingType": self.pending_type,
            }
        )


class LimitOrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A plain limit order. A BUY pays from the card (USDT, amount = price x qty as a
    string); a SELL pays with the token itself (ALPHA wallet, amount = quantity as a
    number), exactly as in the captured browser requests."""

    symbol: str
    base_asset: str
    quote_asset: str
    side: str
    price: Decimal
    quantity: Decimal
    payment_amount: Decimal
    order_type: str = "LIMIT"

    @property
    def payment_wallet_type(self) -> str:
        return "CARD" if self.side == "BUY" else "ALPHA"

    def to_body(self) -> bytes:
        from exchange.ordermath import json_number, json_string

        amount = (
            json_string(self.payment_amount)
            if self.side == "BUY"
            else json_number(self.payment_amount)
        )
        return msgspec.json.encode(
            {
                "baseAsset": self.base_asset,
                "quoteAsset": self.quote_asset,
                "side": self.side,
                "price": json_number(self.price),
                "quantity": json_number(self.quantity),
                "paymentDetails": [
                    {"amount": amount, "paymentWalletType": self.payment_wallet_type}
                ],
                "orderType": self.order_type,
            }
        )


class CancelRequest(msgspec.Struct, rename="camel"):
    order_id: Id
    symbol: str

    def __post_init__(self) -> None:
        self.order_id = _id(self.order_id)


# --------------------------------------------------------------------------- decoding

_decoders: dict[Any, msgspec.json.Decoder] = {}


def decoder(tp: Any) -> msgspec.json.Decoder:
    """A cached msgspec decoder for ``tp`` (building one per call would be slow)."""
    d = _decoders.get(tp)
    if d is None:
        d = _decoders[tp] = msgspec.json.Decoder(tp)
    return d


def decode_data(raw: bytes | msgspec.Raw, tp: Any, endpoint: str) -> Any:
    """Decode an envelope's ``data`` into ``tp`` and check every number in it
    (``exchange.untrusted``). ``BadResponse`` names the endpoint and the field:
    ``user-volume: data.tradeVolumeInfoList[AOP].volume is NaN``."""
    name = u.endpoint_name(endpoint)
    try:
        value = decoder(tp).decode(raw)
    except msgspec.ValidationError as exc:
        raise BadResponse(f"{name}: {u.msgspec_field(exc)}", endpoint=endpoint) from None
    except msgspec.DecodeError as exc:
        raise BadResponse(f"{name}: data is not JSON ({exc})", endpoint=endpoint) from None
    try:
        u.check_numbers(value, "data", u.kind_of(tp))
    except u.BadNumber as exc:
        raise BadResponse(f"{name}: {exc}", endpoint=endpoint) from None
    return value
