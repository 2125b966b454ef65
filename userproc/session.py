"""What every part of one user process shares: the exchange client, the order tracker,
the journal, the stop flags, the event sink, and the few exchange calls whose error
handling must be the same everywhere.

``call`` is the one retry policy: session expiry and risk challenges go straight up (never
retried), rate limits wait as long as the exchange asked, a proxy that refuses the user's
login goes straight up too, transport failures and 5xx get ``max_retry_attempts``
retries with exponential backoff from ``retry_delay_seconds`` and then become
``ExchangeDown``. A stop "now" (a drain past its grace becomes one) that comes during one
of those waits ends it: ``call`` raises ``StopRequested`` rather than retry. Calls begun
after "now" (the cancel-and-sell clean-up) keep the normal bounded policy. Order-placing
calls never go through it (a placing POST is never re-sent; see ``roundtrip``).

``tell`` sends an event to the supervisor and logs it, from the one message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

import msgspec
import structlog

from config.settings import EffectiveSettings
from exchange.client import AlphaClient
from exchange.clock import Clock
from exchange.errors import (
    BadResponse,
    ProxyLoginRefused,
    RateLimited,
    TransportError,
    UnknownToken,
)
from exchange.models import SymbolFilters, TokenInfo, find_token
from protocol import messages as m
from userproc.errors import BadReplies, ExchangeDown
from userproc.journal import Journal
from userproc.lifecycle import STRATEGY, Lifecycle
from userproc.tracker import OrderState, OrderTracker
from userproc.tuning import Tuning

log = structlog.get_logger(__name__)
T = TypeVar("T")
P = ParamSpec("P")
# the latest UpdateSettings (raw dicts) from the supervisor, if any
PendingSettings = Callable[[], list[EffectiveSettings] | None]
SpentElsewhere = Callable[[], m.SpentElsewhere | None]
_NOT_LOGGED = ("user_id", "seq", "at")  # the log's context names the user; the link numbers
KNOWN_VOLUME_MAX_AGE = 30.0  # seconds: older, the user process reads the volume itself


@dataclass(frozen=True)
class Market:
    """What one strategy trades: KOGE = ALPHA_22 on ALPHA_22USDT."""

    token: str
    base_asset: str
    symbol: str
    filters: SymbolFilters


@dataclass
class Fills:
    """An order's fills, from the exchange's user trades (or the tracker as fallback)."""

    qty: Decimal = Decimal(0)
    quote: Decimal = Decimal(0)
    fee_base: Decimal = Decimal(0)  # fee taken in the token
    fee_quote: Decimal = Decimal(0)  # fee taken in USDT
    last_ms: int | None = None

    @property
    def avg_price(self) -> Decimal:
        return self.quote / self.qty if self.qty else Decimal(0)

    @property
    def fee_usdt(self) -> Decimal:
        return self.fee_quote + self.fee_base * self.avg_price


class Session:
    def __init__(
        self,
        *,
        user_id: str,
        client: AlphaClient,
        journal: Journal,
        tracker: OrderTracker,
        life: Lifecycle,
        emit: Callable[[m.Event], None],
        clock: Clock,
        tuning: Tuning,
        settings: EffectiveSettings,
        request_timeout: float = 10.0,
        known_volumes: dict[str, Decimal] | None = None,
        known_volumes_at: float = 0.0,
        pending_settings: PendingSettings = lambda: None,
        spent_elsewhere: SpentElsewhere = lambda: None,
    ) -> None:
        self.user_id = user_id
        self.client = client
        self.journal = journal
        self.tracker = tracker
        self.life = life
        self.emit = emit
        self.clock = clock
        self.tuning = tuning
        # each strategy's settings (retry policy, timeouts), by strategy id; ``settings``
        # answers for the strategy whose task is asking (``lifecycle.STRATEGY``)
        self._settings: dict[str | None, EffectiveSettings] = {None: settings}
        self.stream_up = asyncio.Event()
        self.in_flight: dict[str, int] = {}  # our open order ids -> intent time (ms)
        self.last_fill_mono: float | None = None
        # price/amount refusals (000002 ...) since the strategy's last placed OTO
        self.amount_refusals: dict[str | None, int] = {}
        self.order_strategy: dict[str, str] = {}  # order id -> strategy that placed it
        self.trips: dict[str | None, int] = {}  # round trips in progress, per strategy
        self.serial = False  # the balance covers one round trip at a time: take turns
        self.trip_lock = asyncio.Lock()
        self._trip_over = asyncio.Event()  # set (and replaced) whenever a round trip ends
        self._latencies: deque[float] = deque(maxlen=50)  # how long legs took, as streamed
        self._tokens: tuple[float, date | None, list[TokenInfo] | None] = (0.0, None, None)
        # the supervisor's reads of today's volume, from the spec (see known_volume)
        self.known_volumes: dict[str, Decimal] = dict(known_volumes or {})
        self.known_volumes_at = known_volumes_at
        self.balance_clear: dict[str, date] = {}  # strategy -> UTC day the balance rule cleared
        # bumped on every stream connect and disconnect: a trade that saw it change may
        # have missed reports, so its fills come from REST
        self.stream_epoch = 0
        # symbol -> (monotonic time, price) of our own latest fill seen on the stream
        self._fill_price: dict[str, tuple[float, Decimal]] = {}
        self.price_listeners: list[Callable[[str, float, Decimal], None]] = []
        self.request_timeout = request_timeout  # the REST client's: when a lost POST can land
        self.pending_settings = pending_settings
        self.spent_elsewhere = spent_elsewhere  # a pool: the user's cost on other nodes

    # ------------------------------------------------------------------ events
    def tell(self, event: m.Event, name: str, *fields: str, **extra: object) -> None:
        """Send ``event`` to the supervisor and log it as ``name``, from the one message:
        the event's ``fields`` named (default: every field set) and ``extra``. A hot path
        names its few fields: each logged field costs time on every line."""
        self.emit(event)
        if fields:
            shown = {f: getattr(event, f) for f in fields}
        else:
            shown = msgspec.structs.asdict(event)
            for key in _NOT_LOGGED:
                del shown[key]
            shown = {k: v for k, v in shown.items() if v is not None}
        log.info(name, **shown, **extra)

    # ------------------------------------------------------------------ strategies
    @property
    def settings(self) -> EffectiveSettings:
        """The settings of the strategy whose task is asking (the first one's otherwise:
        recovery at start)."""
        return self._settings.get(STRATEGY.get()) or self._settings[None]

    @settings.setter
    def settings(self, st: EffectiveSettings) -> None:
        self._settings[st.strategy_id] = st

    def others_trading(self) -> bool:
        """A round trip of another strategy of this user is in progress."""
        me = STRATEGY.get()
        return any(n > 0 for sid, n in self.trips.items() if sid != me)

    def trip_started(self, sid: str) -> None:
        self.trips[sid] = self.trips.get(sid, 0) + 1

    def trip_ended(self, sid: str) -> None:
        self.trips[sid] -= 1
        self._trip_over.set()
        self._trip_over = asyncio.Event()

    async def others_idle(self, within: float) -> None:
        """Wait (bounded) until no other strategy of this user has a round trip going."""
        deadline = self.clock.monotonic() + within
        while self.others_trading() and (left := deadline - self.clock.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._trip_over.wait()

    # ------------------------------------------------------------------ prices
    def observe_fill(self, st: OrderState) -> None:
        """Tracker fill listener: our own fills are market prices (a crossing limit order
        fills at the market), so they price the next buy and feed the volatility guard."""
        if st.symbol and st.last_price > 0:
            now = self.clock.monotonic()
            self._fill_price[st.symbol] = (now, st.last_price)
            for listener in self.price_listeners:
                listener(st.symbol, now, st.last_price)

    def fresh_price(self, symbol: str) -> Decimal | None:
        """Our latest fill price if younger than ``tuning.fill_price_max_age_seconds``."""
        seen = self._fill_price.get(symbol)
        if (
            seen is None
            or self.clock.monotonic() - seen[0] > self.tuning.fill_price_max_age_seconds
        ):
            return None
        return seen[1]

    def forget_price(self, symbol: str) -> None:
        """A trade did not fill as priced: the next buy asks the ticker."""
        self._fill_price.pop(symbol, None)

    # ------------------------------------------------------------------ volumes
    def known_volume(self, strategy_id: str) -> Decimal | None:
        """The supervisor's read of today's volume, handed over in the spec, once, while
        fresh (``KNOWN_VOLUME_MAX_AGE``) and of today: it saves the first read."""
        known = self.known_volumes.pop(strategy_id, None)
        at = self.known_volumes_at
        fresh = 0 <= self.clock.time() - at <= KNOWN_VOLUME_MAX_AGE
        same_day = datetime.fromtimestamp(at, tz=UTC).date() == self.clock.utc_day()
        return known if known is not None and fresh and same_day else None

    # ------------------------------------------------------------------ tokens
    async def token_list(self, *, max_age: float | None = None) -> list[TokenInfo]:
        """The token list, asked at most every ``max_age`` seconds (default
        ``token_list_max_age_seconds``; 0 = now) and afresh on a new UTC day (a token's
        mulPoint changes at the day boundary)."""
        now, day = self.clock.monotonic(), self.clock.utc_day()
        at, seen_day, cached = self._tokens
        if max_age is None:
            max_age = self.tuning.token_list_max_age_seconds
        if cached is None or day != seen_day or now - at >= max_age:
            tokens: list[TokenInfo] = await self.call("token_list", self.client.token_list)
            self._tokens = (now, day, tokens)
            return tokens
        return cached

    async def token(self, name: str, *, max_age: float | None = None) -> TokenInfo:
        """A token by its plain symbol (``KOGE``) or alpha id, from the token list."""
        found = find_token(await self.token_list(max_age=max_age), name)
        if found is not None:
            return found
        raise UnknownToken(f"no token {name!r} in the token list")

    # ------------------------------------------------------------------ latency
    def observe_latency(self, seconds: float) -> None:
        """A leg ended as the stream told us, ``seconds`` after its wait began."""
        self._latencies.append(seconds)

    def overdue_after(self) -> float:
        """When a leg's end is overdue, so REST is asked: ``overdue_factor`` times the 90th
        percentile of the legs this process has seen, at least ``overdue_floor_seconds``
        and at most ``rest_check_seconds``."""
        tu = self.tuning
        seen = sorted(self._latencies)
        typical = seen[int(len(seen) * 0.9)] if seen else 0.0
        return min(
            max(tu.overdue_floor_seconds, tu.overdue_factor * typical), tu.rest_check_seconds
        )

    # ------------------------------------------------------------------ calls
    async def call(
        self, what: str, fn: Callable[P, Awaitable[T]], *args: P.args, **kw: P.kwargs
    ) -> T:
        attempt = 0
        limited = 0
        # the clean-up after "now" is not cut short
        interruptible = not self.life.is_now(STRATEGY.get())
        while True:
            try:
                return await fn(*args, **kw)
            except ProxyLoginRefused:  # the operator's to fix: asking again cannot help
                raise
            except RateLimited as exc:
                limited += 1
                if limited > 10 * max(1, self.settings.max_retry_attempts):
                    raise ExchangeDown(f"{what}: rate limited too long") from None
                log.warning("rate_limited", call=what, retry_after=exc.retry_after)
                self.emit(
                    m.ErrorReport(user_id=self.user_id, kind="rate_limited", message=str(exc))
                )
                await self._wait_or_stop(what, exc.retry_after, interruptible)
            except (TransportError, BadResponse) as exc:
                attempt += 1
                if attempt > self.settings.max_retry_attempts:
                    log.error("exchange_down", call=what, attempts=attempt, error=str(exc))
                    if isinstance(exc, BadResponse):  # a restart would be told the same
                        why = f"{exc.message} ({attempt} replies in a row; nothing decided on them)"
                        raise BadReplies(why) from None
                    raise ExchangeDown(f"{what} failed {attempt} times: {exc}") from None
                delay = self.settings.retry_delay_seconds * (2 ** (attempt - 1))
                log.warning(
                    "exchange_retry", call=what, attempt=attempt, delay=delay, error=str(exc)
                )
                await self._wait_or_stop(what, delay, interruptible)

    async def _wait_or_stop(self, what: str, seconds: float, interruptible: bool) -> None:
        """A wait the exchange imposes, cut short by a stop "now" that comes during it
        (``StopRequested``)."""
        if not interruptible:
            await self.clock.sleep(seconds)
        else:
            await self.life.sleep_unless_now(seconds, STRATEGY.get(), doing=f"waiting on {what}")

    # ------------------------------------------------------------------ orders
    def track(self, order_id: str, intent_ms: int, **known: Any) -> OrderState:
        self.in_flight[order_id] = intent_ms
        sid = STRATEGY.get()
        if sid is not None:
            self.order_strategy[order_id] = sid
        return self.tracker.ensure(order_id, **known)

    def untrack(self, *order_ids: str | None) -> None:
        for oid in order_ids:
            if oid is not None:
                self.in_flight.pop(oid, None)
                self.order_strategy.pop(oid, None)

    async def refresh_orders(self, order_ids: list[str] | None = None) -> None:
        """Ask REST what became of our orders (open orders, then history for the rest):
        the stream may have dropped an event, so no wait relies on it alone."""
        ids = [i for i in (order_ids if order_ids is not None else list(self.in_flight)) if i]
        if not ids:
            return
        opened = await self.call("open_orders", self.client.open_orders)
        seen: set[str] = set()
        for o in opened:
            if o.order_id in ids:
                await self.tracker.apply_rest(o)
                seen.add(o.order_id)
        rest = [i for i in ids if i not in seen]
        if not rest:
            return
        start = min(self.in_flight.get(i, self.clock.now_ms()) for i in rest)
        start -= self.tuning.lookup_slack_ms
        end = self.clock.now_ms() + 60_000
        page = 1
        want = set(rest)
        while want and page <= 10:
            rows = await self.call(
                "order_history",
                self.client.order_history,
                start_ms=start,
                end_ms=end,
                page=page,
                rows=100,
            )
            for h in rows:
                if h.order_id in want:
                    await self.tracker.apply_rest(h)
                    want.discard(h.order_id)
            if len(rows) < 100:
                break
            page += 1

    def stream_fills(self, order_id: str | None, market: Market) -> Fills | None:
        """The order's fills as the stream reported them, if every fill was seen
        (``OrderState.stream_exact``); else None."""
        st = self.tracker.get(order_id)
        if st is None or not st.stream_exact:
            return None
        f = Fills(qty=st.stream_qty, quote=st.stream_quote, last_ms=st.last_trade_ms)
        if st.stream_fee_asset in (market.base_asset, market.token):
            f.fee_base = st.stream_fee
        else:
            f.fee_quote = st.stream_fee
        return f

    async def fills(
        self, order_id: str | None, market: Market, *, trust_stream: bool = False
    ) -> Fills:
        """The order's fills. With ``trust_stream`` (the stream stayed up through the
        whole trade) and a complete stream chain: the stream's own figures, no request.
        Otherwise from the exchange's user trades (exact quote and fees even when stream
        reports were lost); the tracker's figures if REST fails."""
        f = Fills()
        if not order_id:
            return f
        st = self.tracker.get(order_id)
        if st is not None and st.cum_qty == 0 and st.terminal:
            return f
        if trust_stream:
            sf = self.stream_fills(order_id, market)
            if sf is not None:
                return sf
            log.info("fills_from_rest", order_id=order_id, why="stream chain incomplete")
        try:
            trades = await self.call(
                "user_trades", self.client.user_trades, order_id, market.symbol
            )
        except ExchangeDown:
            trades = None
        if trades is not None:
            # every row counts: real answers repeat a tradeId across rows with different
            # quantities (samples/user_trades.json), so rows are not de-duplicated
            for t in trades:
                f.qty += t.qty
                f.quote += t.quote_qty or (t.qty * t.price)
                fee = t.commission or Decimal(0)
                if t.commission_asset in (market.base_asset, market.token):
                    f.fee_base += fee
                else:
                    f.fee_quote += fee
                if t.time_ms:
                    f.last_ms = max(f.last_ms or 0, t.time_ms)
            if st is None or f.qty >= st.cum_qty:
                return f
        # fall back to what the tracker saw
        f = Fills()
        if st is not None:
            f.qty, f.quote = st.cum_qty, st.cum_quote
            if st.fee_asset in (market.base_asset, market.token):
                f.fee_base = st.fee
            else:
                f.fee_quote = st.fee
        return f
