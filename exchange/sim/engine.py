"""The matching engine of the simulated exchange: prices, accounts, orders, fills.

It behaves like Binance Alpha as seen in real traffic: a marketable limit order fills at
the market (a BUY at the ask, a SELL at the bid; after a settable delay, optionally in
parts), a non-marketable one rests until the book crosses it; an OTO's pending sell exists
at once as PENDING with quantity 0 and becomes NEW with the filled quantity minus the fee,
floored to the lot step. All timing uses ``loop.call_later`` and the injectable
``OffsetClock``: no polling, O(1) lookups by order id and account, heaps per symbol for
resting orders. Each UTC day is closed (balance snapshots for the points) before anything
of the next day happens.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
import uuid
from collections import Counter
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import structlog

from exchange.auth import CSRF_HEADER, CSRF_SOURCE_COOKIE, SESSION_COOKIE, csrf_for
from exchange.clock import OffsetClock
from exchange.sim import codes, scores
from exchange.sim.accounts import Account
from exchange.sim.book import KlineBook, Quote, book_quote
from exchange.sim.faults import Faults
from exchange.sim.numbers import ZERO, ceil_to, dec, floor_to, is_multiple, plain, trunc8
from exchange.sim.orders import Order, Trade
from exchange.sim.universe import TOKEN_STATUSES, PriceJump, Scenario, TokenSpec, load_scenario
from exchange.sim.volume import COUNTING_RULES, utc_day

log = structlog.get_logger(__name__)

WALK_STEP = 1.0  # seconds of sim time per random-walk step

CONFIG_KEYS = (
    "fill_delay",
    "sell_fill_delay",
    "volume_lag",
    "counting",
    "volume_jitter",
    "listen_key_ttl",
    "starting_usdt",
    "volatility",
    "price_interval",
    "fee_rate",
    "spread",
)


class SimEngine:
    """All state of one simulated exchange. Create it inside a running event loop."""

    def __init__(
        self,
        *,
        scenario: str | Scenario | None = None,
        seed: int | None = None,
        fill_delay: float | None = None,
        sell_fill_delay: float | None = None,
        volume_lag: float | None = None,
        starting_usdt: Decimal | str | float | None = None,
        counting: str | None = None,
        volume_jitter: float | None = None,
        listen_key_ttl: float | None = None,
        volatility: Decimal | str | float | None = None,
        price_interval: float | None = None,
        fee_rate: Decimal | str | None = None,
        spread: Decimal | str | float | None = None,
        faults: dict[str, Any] | None = None,
        clock: OffsetClock | None = None,
    ) -> None:
        sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        opts = dict(sc.options)
        given = {
            "seed": seed,
            "fill_delay": fill_delay,
            "sell_fill_delay": sell_fill_delay,
            "volume_lag": volume_lag,
            "starting_usdt": starting_usdt,
            "counting": counting,
            "volume_jitter": volume_jitter,
            "listen_key_ttl": listen_key_ttl,
            "volatility": volatility,
            "price_interval": price_interval,
            "fee_rate": fee_rate,
            "spread": spread,
        }
        opts.update({k: v for k, v in given.items() if v is not None})
        unknown = set(opts) - set(CONFIG_KEYS) - {"seed"}
        if unknown:
            raise ValueError(f"unknown sim options: {sorted(unknown)}")
        self.clock = clock or OffsetClock()
        self.seed = int(opts.get("seed", 0))
        self.fill_delay = 0.0
        self.sell_fill_delay: float | None = None  # None: as fill_delay
        self.volume_lag = 0.0
        self.counting = "buy_mul"
        self.volume_jitter = 0.0
        self.listen_key_ttl = 3600.0
        self.starting_usdt = Decimal("10000")
        self.price_interval = 1.0
        self.fee_rate = Decimal("0.0001")
        for t in sc.tokens:
            t.place_listing(self.clock.time())
        self.tokens: dict[str, TokenSpec] = {t.alpha_id: t for t in sc.tokens}
        self._buys: dict[str, list] = {a: [] for a in self.tokens}
        self._sells: dict[str, list] = {a: [] for a in self.tokens}
        self.by_symbol: dict[str, TokenSpec] = {}
        for t in sc.tokens:
            self.by_symbol[t.symbol] = t
            self.by_symbol[t.pair] = t
            self.by_symbol[t.alpha_id] = t
        self.set_config(**{k: v for k, v in opts.items() if k in CONFIG_KEYS})
        self.faults = Faults()
        self.faults.update(dict(sc.faults))
        if faults:
            self.faults.update(faults)
        self.price_rng = random.Random(self.seed)
        self.fault_rng = random.Random(self.seed + 1)
        self.jitter_rng = random.Random(self.seed + 2)
        self.prices: dict[str, Decimal] = {a: t.price for a, t in self.tokens.items()}
        self.open_prices = dict(self.prices)
        self.klines = KlineBook()
        for alpha_id, price in self.prices.items():
            self.klines.price(alpha_id, self.now_ms(), price)
        self._open_day = utc_day(self.clock.time())  # the UTC day not yet closed
        self._price_time = self.clock.time()
        self._walk_steps = 0
        self._jumps: list[PriceJump] = list(sc.jumps)
        self._initial_accounts = sc.accounts
        self.accounts: dict[str, Account] = {}
        self.orders: dict[int, Order] = {}
        self._order_ids = itertools.count(2_400_000, 2)  # pairs: an OTO uses id and id + 1
        self._list_ids = itertools.count(1_393_000_000)
        self._trade_ids = itertools.count(160_000)
        self._page_ids = itertools.count(59_170_000_000)
        self._event_ids = itertools.count(12_501_000_000)
        self._book_seq = itertools.count()
        self.stuck: dict[int, Order] = {}
        self.anonymous_requests: Counter = Counter()  # requests without a session cookie
        self.faults_changed = asyncio.Event()
        self.held = 0  # requests waiting on ``Faults.hold`` right now
        self.hold_seen = asyncio.Event()  # set once a request was held (in-process tests)
        self.hub: Any = None  # exchange.sim.stream.StreamHub, attached by the app
        self._tasks: list[asyncio.Task] = []
        self._handles: list[asyncio.TimerHandle] = []

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the price ticker and scripted jumps (needs the running loop)."""
        loop = asyncio.get_running_loop()
        if self.price_interval > 0:
            self._tasks.append(loop.create_task(self._ticker()))
        for jump in self._jumps:
            self._handles.append(loop.call_later(jump.at, self._apply_jump, jump))

    async def stop(self) -> None:
        for h in self._handles:
            h.cancel()
        for o in self.orders.values():
            if o.timer is not None:
                o.timer.cancel()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
        self._tasks.clear()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.price_interval)
            self.advance_prices()

    # -- config ---------------------------------------------------------------------------

    def set_config(self, **opts: Any) -> None:
        unknown = set(opts) - set(CONFIG_KEYS)
        if unknown:
            raise ValueError(f"unknown config: {sorted(unknown)}")
        for key, value in opts.items():
            if key == "counting":
                if value not in COUNTING_RULES:
                    raise ValueError(f"counting must be one of {COUNTING_RULES}")
                self.counting = value
            elif key in ("starting_usdt", "fee_rate"):
                setattr(self, key, dec(value))
            elif key == "volatility":
                for t in self.tokens.values():
                    t.volatility = dec(value)
            elif key == "spread":
                for t in self.tokens.values():
                    self._set_spread(t, value)
            else:
                setattr(self, key, float(value))

    def config_view(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "fill_delay": self.fill_delay,
            "sell_fill_delay": self.sell_fill_delay,
            "volume_lag": self.volume_lag,
            "counting": self.counting,
            "volume_jitter": self.volume_jitter,
            "listen_key_ttl": self.listen_key_ttl,
            "starting_usdt": str(self.starting_usdt),
            "price_interval": self.price_interval,
            "fee_rate": str(self.fee_rate),
        }

    def set_faults(self, **changes: Any) -> None:
        self.faults.update(changes)
        self.faults_changed.set()  # wakes held requests (``Faults.hold``)
        self.faults_changed = asyncio.Event()
        if not self.faults.never_fill and self.stuck:
            for order in list(self.stuck.values()):
                if not self._never_fill(order):
                    del self.stuck[order.order_id]
                    order.stuck = False
                    if order.is_open:
                        self._route(order)

    def set_token(self, symbol: str, **fields_: Any) -> TokenSpec:
        """Change a token at runtime: ``mul_point`` (pins it; None: the 30-day rule again),
        ``volatility``, ``price``, ``spread``, ``listing_time`` (ms), ``chain_name``,
        ``chain_id``, ``status`` (TRADING | BREAK | DELISTED), ``tick_size``, ``step_size``."""
        token = self.token(symbol)
        for key, value in fields_.items():
            if key == "mul_point":
                token.mul_point = None if value is None else int(value)
            elif key == "volatility":
                token.volatility = dec(value)
            elif key == "price":
                self.set_price(symbol, dec(value))
            elif key == "spread":
                self._set_spread(token, value)
            elif key == "listing_time":
                token.listing_time = None if value is None else int(value)
            elif key in ("chain_name", "chain_id"):
                setattr(token, key, str(value))
            elif key in ("tick_size", "step_size"):  # the exchange changed a filter
                setattr(token, key, dec(value))
            elif key == "status":
                if value not in TOKEN_STATUSES:
                    raise ValueError(f"status must be one of {TOKEN_STATUSES}")
                token.status = value
            else:
                raise ValueError(f"token field {key!r} cannot be changed")
        return token

    def _set_spread(self, token: TokenSpec, value: Any) -> None:
        spread = dec(value)
        if spread < 0 or spread >= 1:
            raise ValueError("spread must be in [0, 1)")
        token.spread = spread
        if self._buys[token.alpha_id] or self._sells[token.alpha_id]:
            self._match_book(token)  # a narrower book may now cross resting orders

    # -- time and prices ------------------------------------------------------------------

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def token(self, name: str) -> TokenSpec:
        t = self.by_symbol.get(name)
        if t is None:
            raise codes.SimError(codes.UNKNOWN_SYMBOL, "Invalid symbol.")
        return t

    def quote(self, t: TokenSpec) -> Quote:
        """The token's best bid and ask now."""
        return book_quote(self.prices[t.alpha_id], t.spread, t.tick_size)

    def _bids(self) -> dict[str, Decimal]:
        return {a: self.quote(t).bid for a, t in self.tokens.items()}

    def mul_point(self, t: TokenSpec) -> int:
        return t.mul_point_at(self.clock.time())

    def roll_day(self) -> None:
        """Close every UTC day the clock has left: snapshot each account's balance as that
        day's 23:59:59 balance. Called before anything of a new day can change it."""
        today = utc_day(self.clock.time())
        if today <= self._open_day:
            return
        n = (today - self._open_day).days
        closed = [self._open_day + timedelta(days=k) for k in range(n)]
        self._open_day = today
        scores.close_days(self.accounts.values(), closed, self._bids())

    def eligible_balance(self, acc: Account) -> Decimal:
        return scores.eligible_balance(acc, self._bids())

    def user_score(self, acc: Account) -> dict[str, Any]:
        self.roll_day()
        return scores.user_score(
            acc, self._open_day, lambda day: acc.volume.day_total(day, self.counting)
        )

    def advance_time(self, seconds: float) -> None:
        self.clock.offset += float(seconds)
        self.roll_day()
        self.advance_prices()
        if self.hub is not None:
            self.hub.expire_keys()

    def advance_prices(self) -> None:
        """Move each token's random walk up to the sim clock's now, then match.

        The walk takes one step per whole ``WALK_STEP`` seconds of sim time since start, so
        a seed and a time give the same prices however often the ticker ran. Long jumps of
        the clock are taken as one step with the matching variance.
        """
        self.roll_day()
        steps = int((self.clock.time() - self._price_time) / WALK_STEP)
        n = steps - self._walk_steps
        if n <= 0:
            return
        self._walk_steps = steps
        rounds = [1.0] * n if n <= 1000 else [float(n)]
        for alpha_id, t in self.tokens.items():
            vol = float(t.volatility)
            if vol <= 0:
                continue
            price = self.prices[alpha_id]
            for dt in rounds:
                z = self.price_rng.gauss(0.0, 1.0)
                factor = math.exp(
                    vol * math.sqrt(dt * WALK_STEP) * z - 0.5 * vol * vol * dt * WALK_STEP
                )
                price = price * Decimal(repr(factor))
            self._store_price(t, price)

    def set_price(self, symbol: str, price: Decimal) -> None:
        self._store_price(self.token(symbol), dec(price))

    def _apply_jump(self, jump: PriceJump) -> None:
        token = self.token(jump.symbol)
        if jump.price is not None:
            self._store_price(token, jump.price)
        elif jump.factor is not None:
            self._store_price(token, self.prices[token.alpha_id] * jump.factor)

    def _store_price(self, t: TokenSpec, price: Decimal) -> None:
        self.roll_day()
        price = (price / t.tick_size).to_integral_value(ROUND_HALF_UP) * t.tick_size
        self.prices[t.alpha_id] = max(price, t.tick_size)
        self.klines.price(t.alpha_id, self.now_ms(), self.prices[t.alpha_id])
        self._match_book(t)

    # -- accounts and auth ----------------------------------------------------------------

    def account(self, name: str) -> Account:
        acc = self.accounts.get(name)
        if acc is None:
            acc = self.accounts[name] = Account(name=name)
            acc.bal("USDT").free = self.starting_usdt
            for asset, amount in self._initial_accounts.get(name, {}).items():
                key = asset if asset == "USDT" else self.token(asset).alpha_id
                acc.bal(key).free = amount
        return acc

    def authenticate(self, cookies: Any, headers: Any) -> Account:
        """The account behind a browser session, or the real session-expired error."""
        name = cookies.get(SESSION_COOKIE)
        cr00 = cookies.get(CSRF_SOURCE_COOKIE)
        token = headers.get(CSRF_HEADER)
        if not name or not cr00 or not token or csrf_for(cr00) != token.lower():
            raise codes.session_expired()
        if name in self.faults.session_expired or cr00 in self.faults.session_expired:
            raise codes.session_expired(self.faults.session_expired_http)
        return self.account(name)

    # -- placing --------------------------------------------------------------------------

    def _check_order(
        self, acc: Account, t: TokenSpec, price: Decimal, qty: Decimal, side: str = "BUY"
    ) -> Decimal:
        if price <= 0 or qty <= 0:
            raise codes.bad_param("price and quantity must be positive")
        if not is_multiple(price, t.tick_size) or not is_multiple(qty, t.step_size):
            raise codes.incorrect_price_or_amount()
        if price < t.min_price or price > t.max_price:
            raise codes.filter_failure("PRICE_FILTER", f"minPrice {t.min_price}")
        if qty < t.min_qty or qty > t.max_qty:
            raise codes.filter_failure("LOT_SIZE", f"minQty {t.min_qty} maxQty {t.max_qty}")
        notional = trunc8(price * qty)
        if notional < t.min_notional and side == "SELL":
            raise codes.below_minimum(t.min_notional)
        if notional < t.min_notional:
            raise codes.filter_failure("MIN_NOTIONAL", f"minNotional {t.min_notional}")
        if notional > t.max_notional:
            raise codes.filter_failure("NOTIONAL", f"maxNotional {t.max_notional}")
        return notional

    @staticmethod
    def _check_trading(t: TokenSpec, side: str) -> None:
        """BREAK: sells only (positions can be closed); DELISTED: nothing."""
        if t.status == "TRADING" or (side == "SELL" and t.status == "BREAK"):
            return
        raise codes.SimError(codes.UNKNOWN_SYMBOL, f"Symbol is not trading ({t.status}).")

    def _check_risk(self, acc: Account) -> None:
        if acc.name in self.faults.risk_challenge:
            self.faults.risk_challenge.remove(acc.name)
            raise codes.risk_challenge()

    def _check_open_count(self, acc: Account, t: TokenSpec, adding: int) -> None:
        count = sum(1 for o in acc.open_orders.values() if o.token is t)
        if count + adding > t.max_open_orders:
            raise codes.SimError(codes.TOO_MANY_ORDERS, "Filter failure: MAX_NUM_ORDERS")

    @staticmethod
    def _payment(body: dict) -> tuple[Decimal, str]:
        details = body.get("paymentDetails")
        if not isinstance(details, list) or not details or not isinstance(details[0], dict):
            raise codes.bad_param("paymentDetails")
        try:
            amount = dec(details[0].get("amount"))
        except ValueError as exc:
            raise codes.bad_param("paymentDetails.amount") from exc
        return amount, str(details[0].get("paymentWalletType", ""))

    @staticmethod
    def _num(body: dict, key: str) -> Decimal:
        try:
            return dec(body.get(key))
        except ValueError as exc:
            raise codes.bad_param(key) from exc

    def _new_order(
        self,
        acc: Account,
        t: TokenSpec,
        order_id: int,
        side: str,
        price: Decimal,
        qty: Decimal,
        status: str,
        now_ms: int,
    ) -> Order:
        order = Order(
            order_id=order_id,
            account=acc.name,
            token=t,
            side=side,
            price=price,
            orig_qty=qty,
            status=status,
            created_ms=now_ms,
            client_order_id="web_" + uuid.uuid4().hex,
            updated_ms=now_ms,
        )
        order.history.append({"status": status, "time_ms": now_ms})
        self.orders[order_id] = order
        acc.orders.append(order)
        acc.open_orders[order_id] = order
        return order

    def place_oto(self, acc: Account, body: dict) -> dict[str, int]:
        """OTO: a limit BUY (working) that, once filled, activates a limit SELL (pending)."""
        if not isinstance(body, dict):
            raise codes.bad_param("body")
        self._check_risk(acc)
        t = self.by_symbol.get(str(body.get("baseAsset", "")))
        if t is None or t.alpha_id != body.get("baseAsset"):
            raise codes.SimError(codes.UNKNOWN_SYMBOL, "Invalid symbol.")
        if body.get("quoteAsset") != "USDT":
            raise codes.bad_param("quoteAsset")
        if body.get("workingSide") != "BUY":
            raise codes.bad_param("workingSide")
        if body.get("pendingType") not in (None, "LIMIT"):
            raise codes.bad_param("pendingType")
        self._check_trading(t, "BUY")
        price = self._num(body, "workingPrice")
        qty = self._num(body, "workingQuantity")
        pending_price = self._num(body, "pendingPrice")
        notional = self._check_order(acc, t, price, qty)
        if not is_multiple(pending_price, t.tick_size):
            raise codes.incorrect_price_or_amount()
        if pending_price < t.min_price or pending_price > t.max_price:
            raise codes.filter_failure("PRICE_FILTER", "pendingPrice")
        amount, _wallet = self._payment(body)
        if amount != notional:
            raise codes.payment_amount_mismatch()
        self._check_open_count(acc, t, 2)
        acc.lock("USDT", notional)
        now = self.now_ms()
        wid = next(self._order_ids)
        list_id = next(self._list_ids)
        working = self._new_order(acc, t, wid, "BUY", price, qty, "NEW", now)
        pending = self._new_order(acc, t, wid + 1, "SELL", pending_price, ZERO, "PENDING", now)
        working.locked = notional
        for o, pos in ((working, "OTO_WORKING"), (pending, "OTO_PENDING")):
            o.order_list_id = list_id
            o.position = pos
        working.partner, pending.partner = pending, working
        working.working_ms = now
        acc.oto_count += 1
        self._emit(working, "NEW")
        self._emit(pending, "NEW")
        self._route(working)
        return {"workingOrderId": wid, "pendingOrderId": wid + 1}

    def place_limit(self, acc: Account, body: dict) -> str:
        if not isinstance(body, dict):
            raise codes.bad_param("body")
        self._check_risk(acc)
        t = self.by_symbol.get(str(body.get("baseAsset", "")))
        if t is None or t.alpha_id != body.get("baseAsset"):
            raise codes.SimError(codes.UNKNOWN_SYMBOL, "Invalid symbol.")
        if body.get("quoteAsset") != "USDT":
            raise codes.bad_param("quoteAsset")
        side = body.get("side")
        if side not in ("BUY", "SELL"):
            raise codes.bad_param("side")
        if body.get("orderType", "LIMIT") != "LIMIT":
            raise codes.bad_param("orderType")
        self._check_trading(t, side)
        price = self._num(body, "price")
        qty = self._num(body, "quantity")
        notional = self._check_order(acc, t, price, qty, side)
        amount, _wallet = self._payment(body)
        if side == "BUY" and amount != notional:
            raise codes.payment_amount_mismatch()
        if side == "SELL" and amount != qty:
            raise codes.bad_param("paymentDetails.amount must be the quantity")
        self._check_open_count(acc, t, 1)
        if side == "BUY":
            acc.lock("USDT", notional)
        else:
            acc.lock(t.alpha_id, qty)
        now = self.now_ms()
        oid = next(self._order_ids)
        order = self._new_order(acc, t, oid, side, price, qty, "NEW", now)
        order.locked = notional if side == "BUY" else qty
        order.working_ms = 0
        self._emit(order, "NEW")
        self._route(order)
        return str(oid)

    # -- matching -------------------------------------------------------------------------

    def _marketable(self, order: Order) -> bool:
        q = self.quote(order.token)
        return order.price >= q.ask if order.side == "BUY" else order.price <= q.bid

    def _never_fill(self, order: Order) -> bool:
        f = self.faults
        stuck_sell = order.position == "OTO_PENDING" and order.account in f.stuck_oto_sells
        return f.never_fill or order.account in f.never_fill_accounts or stuck_sell

    def _route(self, order: Order, *, maker: bool = False) -> None:
        """Fill a marketable order after the fill delay, else rest it in the book."""
        if self._never_fill(order):
            order.stuck = True
            self.stuck[order.order_id] = order
            return
        if self._marketable(order):
            self._schedule_fill(order, maker)
            return
        book = self._buys if order.side == "BUY" else self._sells
        key = -order.price if order.side == "BUY" else order.price
        order.in_book = True
        heapq.heappush(book[order.token.alpha_id], (key, next(self._book_seq), order))

    def _match_book(self, t: TokenSpec) -> None:
        q = self.quote(t)
        buys = self._buys[t.alpha_id]
        while buys and -buys[0][0] >= q.ask:
            order = heapq.heappop(buys)[2]
            if order.in_book and order.is_open:
                order.in_book = False
                self._route(order, maker=True)
        sells = self._sells[t.alpha_id]
        while sells and sells[0][0] <= q.bid:
            order = heapq.heappop(sells)[2]
            if order.in_book and order.is_open:
                order.in_book = False
                self._route(order, maker=True)

    def _schedule_fill(self, order: Order, maker: bool) -> None:
        loop = asyncio.get_running_loop()
        delay = self.fill_delay
        if order.side == "SELL" and self.sell_fill_delay is not None:
            delay = self.sell_fill_delay
        order.timer = loop.call_later(delay, self._fill, order, maker)

    def _fill(self, order: Order, maker: bool) -> None:
        order.timer = None
        self.roll_day()
        if not order.is_open or order.status == "PENDING":
            return
        if self._never_fill(order):
            order.stuck = True
            self.stuck[order.order_id] = order
            return
        t = order.token
        acc = self.accounts[order.account]
        q = self.quote(t)
        price = min(q.ask, order.price) if order.side == "BUY" else max(q.bid, order.price)
        qty = order.remaining
        parts = self.faults.partial_fills
        if parts > 1:
            chunk = ceil_to(order.orig_qty / parts, t.step_size)
            if ZERO < chunk < qty:
                qty = chunk
        quote = trunc8(qty * price)
        last = qty == order.remaining
        now = self.now_ms()
        if order.side == "BUY":
            fee = trunc8(qty * self.fee_rate)
            fee_asset = t.alpha_id
            release = order.locked if last else min(order.locked, trunc8(qty * order.price))
            usdt = acc.bal("USDT")
            usdt.locked -= release
            usdt.free += release - quote
            order.locked -= release
            acc.bal(t.alpha_id).free += qty - fee
        else:
            fee = trunc8(quote * self.fee_rate)
            fee_asset = "USDT"
            acc.bal(t.alpha_id).locked -= qty
            order.locked -= qty
            acc.bal("USDT").free += quote - fee
        trade = Trade(
            trade_id=next(self._trade_ids),
            page_id=next(self._page_ids),
            price=price,
            qty=qty,
            quote=quote,
            fee=fee,
            fee_asset=fee_asset,
            time_ms=now,
        )
        order.trades.append(trade)
        order.executed_qty += qty
        order.cum_quote += quote
        order.fee_total += fee
        order.set_status("FILLED" if last else "PARTIALLY_FILLED", now)
        acc.volume.add(self.clock.time(), t.symbol, order.side, quote, self.mul_point(t))
        self.klines.trade(t.alpha_id, now, price, qty, quote)
        self._emit(order, "TRADE", trade=trade, maker=maker)
        if last:
            acc.open_orders.pop(order.order_id, None)
            if order.position == "OTO_WORKING" and order.partner is not None:
                self._activate_pending(acc, order, order.partner)
        else:
            self._schedule_fill(order, maker)

    def _activate_pending(self, acc: Account, working: Order, pending: Order) -> None:
        if pending.status != "PENDING":
            return
        t = pending.token
        qty = floor_to(working.executed_qty - working.fee_total, t.step_size)
        now = self.now_ms()
        if qty < t.min_qty:
            acc.open_orders.pop(pending.order_id, None)
            pending.set_status("EXPIRED", now)
            self._emit(pending, "EXPIRED")
            return
        acc.lock(t.alpha_id, qty)
        pending.orig_qty = qty
        pending.locked = qty
        pending.working_ms = now
        pending.set_status("NEW", now)
        self._emit(pending, "NEW")
        self._route(pending)

    # -- cancel ---------------------------------------------------------------------------

    def cancel(self, acc: Account, order_id: Any, symbol: Any) -> None:
        try:
            oid = int(str(order_id))
        except ValueError as exc:
            raise codes.bad_param("orderId") from exc
        order = self.orders.get(oid)
        if order is None or order.account != acc.name or order.token.pair != symbol:
            raise codes.SimError(codes.UNKNOWN_ORDER, "Unknown order sent.")
        if not order.is_open:
            raise codes.SimError(
                codes.ORDER_NOT_OPEN, "Order is not open (already filled or canceled)."
            )
        legs = [order]
        if order.partner is not None and order.partner.is_open:
            legs = [order, order.partner]
            legs.sort(key=lambda o: o.order_id)
        for leg in legs:
            self._cancel_one(acc, leg)

    def _cancel_one(self, acc: Account, order: Order) -> None:
        if order.timer is not None:
            order.timer.cancel()
            order.timer = None
        order.in_book = False
        self.stuck.pop(order.order_id, None)
        if order.locked > 0:
            acc.unlock("USDT" if order.side == "BUY" else order.token.alpha_id, order.locked)
            order.locked = ZERO
        acc.open_orders.pop(order.order_id, None)
        order.set_status("CANCELED", self.now_ms())
        self._emit(order, "CANCELED")

    # -- stream ---------------------------------------------------------------------------

    def _emit(
        self, order: Order, exec_type: str, *, trade: Trade | None = None, maker: bool = False
    ) -> None:
        if self.hub is None:
            return
        data = order.report(
            exec_type=exec_type,
            event_id=next(self._event_ids),
            now_ms=self.now_ms(),
            trade=trade,
            maker=maker,
        )
        self.hub.publish(order.account, data)

    # -- reads ----------------------------------------------------------------------------

    def user_volume(self, acc: Account) -> dict[str, Decimal]:
        vols = acc.volume.reported(self.clock.time(), self.volume_lag, self.counting)
        if self.volume_jitter > 0:
            j = self.volume_jitter
            vols = {
                k: v * Decimal(repr(1 + self.jitter_rng.uniform(-j, j))) for k, v in vols.items()
            }
        return vols

    def account_view(self, acc: Account) -> dict[str, Any]:
        now = self.clock.time()
        symbols = {t.alpha_id: t.symbol for t in self.tokens.values()}
        return {
            "account": acc.name,
            "balances": {
                asset: {
                    "free": plain(b.free),
                    "locked": plain(b.locked),
                    "symbol": symbols.get(asset, asset),
                }
                for asset, b in acc.balances.items()
            },
            "volume_today": {
                k: str(v)
                for k, v in acc.volume.reported(now, self.volume_lag, self.counting).items()
            },
            "volume_now": {
                k: str(v) for k, v in acc.volume.reported(now, 0.0, self.counting).items()
            },
            "traded_today": acc.volume.traded(now),
            "oto_count": acc.oto_count,
            "open_orders": len(acc.open_orders),
            "orders": [o.admin_view() for o in acc.orders],
            "requests": dict(acc.requests),
            "eligible_balance": str(self.eligible_balance(acc)),
            "balance_snapshots": {d.isoformat(): str(v) for d, v in acc.balance_snapshots.items()},
        }

    def token_view(self, t: TokenSpec) -> dict[str, Any]:
        q = self.quote(t)
        return {
            "alpha_id": t.alpha_id,
            "chain_name": t.chain_name,
            "chain_id": t.chain_id,
            "price": str(self.prices[t.alpha_id]),
            "bid": str(q.bid),
            "ask": str(q.ask),
            "spread": str(t.spread),
            "volatility": str(t.volatility),
            "mul_point": self.mul_point(t),
            "mul_point_pinned": t.mul_point is not None,
            "listing_time": t.listing_time,
            "status": t.status,
        }

    def state(self) -> dict[str, Any]:
        return {
            "time": self.clock.time(),
            "time_offset": self.clock.offset,
            "config": self.config_view(),
            "faults": self.faults.as_dict(),
            "prices": {t.symbol: str(self.prices[a]) for a, t in self.tokens.items()},
            "mul_points": {t.symbol: self.mul_point(t) for t in self.tokens.values()},
            "tokens": {t.symbol: self.token_view(t) for t in self.tokens.values()},
            "accounts": {name: self.account_view(acc) for name, acc in self.accounts.items()},
            "stream": self.hub.stats() if self.hub is not None else {},
            "anonymous_requests": dict(self.anonymous_requests),
            "held": self.held,
        }

    def draw(self, rate: float) -> bool:
        return rate > 0 and self.fault_rng.random() < rate
