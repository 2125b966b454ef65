"""The Binance Alpha REST client: one aiohttp session per user.

Why it looks the way it does:
- Every request carries the user's copied browser cookies and headers plus fresh
  ``x-trace-id`` / ``x-ui-request-trace`` UUIDs, and nothing a browser would not send.
- Reads (GETs, and POSTs whose repetition is harmless: cancel, listen key) retry with a
  bounded exponential backoff, through the injected Clock, on 5xx, timeouts and dropped
  connections, then raise ``TransportError``.
- Order-placing POSTs are never retried: the order may exist even when the reply was lost,
  so a timeout, 5xx or unreadable reply raises ``OutcomeUnknown``. Only a refused
  connection (nothing was sent) raises ``TransportError``.
- Session-expired, risk-challenge and rate-limit answers are never retried here; they
  are raised typed so the caller can stop the user or wait.
- Logs carry method, path, status and milliseconds at DEBUG; never a cookie, header or
  body. Exceptions are raised ``from None`` so no aiohttp object holding request headers
  rides along in a traceback.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import aiohttp
import msgspec
import structlog

from exchange.auth import KEPT_HEADERS, Credentials
from exchange.clock import SYSTEM_CLOCK, Clock
from exchange.envelope import envelope_error, order_rejected, parse_envelope, status_error
from exchange.errors import (
    BadResponse,
    ExchangeError,
    OutcomeUnknown,
    ProxyFailed,
    ProxyLoginRefused,
    RiskChallenge,
    TransportError,
    UnknownToken,
)
from exchange.market_models import (
    AssetBalance,
    Depth,
    Kline,
    KlineRow,
    UserScore,
)
from exchange.models import (
    ExchangeInfo,
    HistoryOrder,
    LimitOrderRequest,
    OpenOrder,
    OrderId,
    OtoOrderRequest,
    OtoPlaced,
    RawExchangeInfo,
    RawUserVolume,
    RawWallet,
    SymbolFilters,
    Ticker,
    TokenInfo,
    UserTrade,
    UserVolume,
    WalletBalance,
    decode_data,
    find_token,
)
from exchange.proxy import Proxy, parse_proxy
from exchange.proxy_failures import LOGIN_REFUSED_HTTP, ProxyFailure, proxy_failure, socks5_login

DEFAULT_BASE_URL = "https://www.binance.com"
DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)

P_TOKEN_LIST = "/bapi/defi/v1/public/wallet-direct/buw/wallet/cex/alpha/all/token/list"
P_AGG_TICKER = "/bapi/defi/v1/public/alpha-trade/aggTicker24"
P_TICKER = "/bapi/defi/v1/public/alpha-trade/ticker"
P_EXCHANGE_INFO = "/bapi/defi/v1/public/alpha-trade/get-exchange-info"
P_USER_VOLUME = "/bapi/defi/v1/private/wallet-direct/buw/wallet/today/user-volume"
P_OTO_PLACE = "/bapi/asset/v1/private/alpha-trade/oto-order/place"
P_LIMIT_PLACE = "/bapi/asset/v1/private/alpha-trade/order/place"
P_CANCEL = "/bapi/defi/v1/private/alpha-trade/order/cancel"
P_OPEN_ORDERS = "/bapi/defi/v1/private/alpha-trade/order/get-open-order"
P_HISTORY = "/bapi/defi/v1/private/alpha-trade/order/get-order-history-merge"
P_USER_TRADES = "/bapi/defi/v1/private/alpha-trade/order/get-user-trades"
P_LISTEN_KEY = "/bapi/defi/v1/private/alpha-trade/get-listen-key"
P_WALLET = "/bapi/defi/v1/private/wallet-direct/cloud-wallet/alpha"
P_DEPTH = "/bapi/defi/v1/public/alpha-trade/fullDepth"
P_KLINES = "/bapi/defi/v1/public/alpha-trade/klines"
P_USER_SCORE = "/bapi/defi/v1/private/wallet-direct/buw/tge/common/user-score"
P_BALANCES = "/bapi/asset/v2/private/asset-service/wallet/asset"

Mode = Literal["read", "order", "cancel"]

log = structlog.get_logger(__name__)


class _Transient(Exception):
    """A failure worth retrying (5xx, timeout, dropped connection); never leaves here."""

    def __init__(
        self, reason: str, status: int | None = None, sent: bool = True, proxy: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.sent = sent  # False when the connection was refused: nothing reached the server
        self.proxy = proxy  # the user's proxy failed (reason names it, password masked)


class AlphaClient:
    """REST access to Binance Alpha for one user (see module docstring for the rules).

    ``retry_base_delay`` / ``retry_max_delay`` bound the backoff between read retries
    (tests set them to 0). ``proxy`` (an ``exchange.proxy`` URL; default: the
    credentials' own ``proxy``) routes every request and the user stream through that
    HTTP or SOCKS5 proxy; its failures are ``ProxyFailed`` naming it, password masked.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        credentials: Credentials | None = None,
        request_timeout: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
        max_get_retries: int = 3,
        session: aiohttp.ClientSession | None = None,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        proxy: str | None = None,
    ) -> None:
        route = proxy or (credentials.proxy if credentials is not None else None)
        self.proxy: Proxy | None = parse_proxy(route) if route else None
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self.request_timeout = request_timeout
        self.clock = clock
        self.max_get_retries = max(0, max_get_retries)
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self._session = session
        self._own_session = session is None
        self.request_count = 0
        self._static_headers = self._build_static_headers(credentials)

    def __repr__(self) -> str:
        via = f", proxy={self.proxy.shown!r}" if self.proxy else ""
        return f"AlphaClient(base_url={self.base_url!r}, credentials={'set' if self._credentials else 'none'}{via})"

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> AlphaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._own_session and not self._session.closed:
            await self._session.close()
        if self._own_session:
            self._session = None

    @property
    def has_credentials(self) -> bool:
        return self._credentials is not None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=self.proxy.connector() if self.proxy else None,  # SOCKS5
                cookie_jar=aiohttp.DummyCookieJar(),  # the session cookies are ours, fixed
                timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                skip_auto_headers=("User-Agent",),
            )
            self._own_session = True
        return self._session

    @property
    def _route(self) -> str | None:
        """``proxy=`` for one request or ``ws_connect`` (an HTTP proxy; SOCKS5 is the
        session's connector)."""
        return self.proxy.request_proxy if self.proxy else None

    async def ws_connect(self, url: str, **kwargs: Any) -> aiohttp.ClientWebSocketResponse:
        """A websocket on this user's route (the user stream). Raises what aiohttp raises;
        ``proxy_failed(exc)`` says whether the proxy was the cause."""
        return await self._http().ws_connect(url, proxy=self._route, **kwargs)

    async def proxy_failed(self, exc: BaseException) -> ProxyFailed | None:
        """``ProxyFailed("proxy socks5://u:***@h:p: <what went wrong>")`` when ``exc`` is
        the user's proxy failing, ``ProxyLoginRefused`` when it refused the username or
        password; None when the proxy was not the cause."""
        failure = await self._proxy_verdict(exc)
        if failure is None:
            return None
        return self._proxy_error(failure)

    async def _proxy_verdict(self, exc: BaseException) -> ProxyFailure | None:
        if self.proxy is None:
            return None
        failure = proxy_failure(exc, self.proxy)
        if failure is not None and failure.unexplained:  # ask the proxy what it refused
            failure = await socks5_login(self.proxy, self.request_timeout) or failure
        return failure

    def _proxy_error(self, failure: ProxyFailure, **kw: Any) -> ProxyFailed:
        assert self.proxy is not None
        kind = ProxyLoginRefused if failure.login_refused else ProxyFailed
        return kind(f"proxy {self.proxy.shown}: {failure.what}", **kw)

    # ------------------------------------------------------------------ headers

    @staticmethod
    def _build_static_headers(creds: Credentials | None) -> dict[str, str]:
        h: dict[str, str] = {"accept": "*/*", "clienttype": "web"}
        if creds is not None:
            for name, value in creds.headers.items():
                if name.lower() in KEPT_HEADERS and value:
                    h[name.lower()] = value
            h["clienttype"] = "web"
            if creds.cookies:
                h["cookie"] = "; ".join(f"{k}={v}" for k, v in creds.cookies.items())
        h.setdefault("user-agent", DEFAULT_USER_AGENT)
        h.setdefault("lang", "en")
        return h

    def _headers(self, *, json_body: bool) -> dict[str, str]:
        h = dict(self._static_headers)
        h["x-trace-id"] = str(uuid.uuid4())
        h["x-ui-request-trace"] = str(uuid.uuid4())
        if json_body:
            h["content-type"] = "application/json"
        return h

    def _require_credentials(self, endpoint: str) -> None:
        if self._credentials is None:
            raise ExchangeError("this call needs a logged-in session", endpoint=endpoint)

    # ------------------------------------------------------------------ transport

    async def _once(
        self, method: str, path: str, params: dict[str, str] | None, body: bytes | None, mode: Mode
    ) -> msgspec.Raw:
        """One HTTP exchange: data on success, a typed error, or ``_Transient``."""
        self.request_count += 1
        headers = self._headers(json_body=body is not None)
        t0 = self.clock.monotonic()
        status: int | None = None
        try:
            async with self._http().request(
                method,
                self.base_url + path,
                params=params,
                data=body,
                headers=headers,
                proxy=self._route,
            ) as resp:
                status = resp.status
                payload = await resp.read()
                rheaders = resp.headers
        except Exception as exc:
            failure = await self._transport_failure(exc, method, path, status, t0)
            if failure is None:
                raise
            raise failure from None
        self._log(method, path, status, t0, None)

        if status == 407 and self.proxy is not None:  # an HTTP proxy forwarding plain http
            self._log(method, path, status, t0, "proxy_failed")
            refused = ProxyFailure(LOGIN_REFUSED_HTTP, retry=False, login_refused=True)
            raise self._proxy_error(refused, http_status=status, endpoint=path)
        err = status_error(status, rheaders, path)
        if err is not None:
            if isinstance(err, RiskChallenge) and mode == "order":
                _order_outcome(err, payload, status, path)
            raise err
        if status >= 500:
            raise _Transient(f"server error HTTP {status}", status)
        try:
            env = parse_envelope(payload, status, path)
        except BadResponse as exc:
            if mode == "order" and 200 <= status < 300:
                raise OutcomeUnknown(
                    f"unreadable reply to an order request; the order may exist ({exc.message})",
                    http_status=status,
                    endpoint=path,
                ) from None
            if mode == "order":  # a 4xx without an envelope: refused before it was placed
                raise order_rejected(
                    None, f"order refused with HTTP {status}", status, path
                ) from None
            raise
        if not env.ok:
            raise envelope_error(env, status, path, kind=mode)
        return env.data

    async def _transport_failure(
        self, exc: BaseException, method: str, path: str, status: int | None, t0: float
    ) -> Exception | None:
        """What a failed HTTP exchange becomes: ``ProxyFailed`` (the proxy refused), a
        ``_Transient`` (retried for reads) saying why, or None (not a transport failure)."""
        proxied = await self._proxy_verdict(exc)
        if proxied is not None:
            self._log(method, path, status, t0, "proxy_failed")
            if not proxied.retry:  # the proxy said no: asking again cannot help
                return self._proxy_error(proxied, http_status=status, endpoint=path)
            problem = f"proxy {self.proxy.shown}: {proxied.what}"  # type: ignore[union-attr]
            return _Transient(problem, status, sent=False, proxy=True)
        if isinstance(exc, aiohttp.ClientConnectorError):
            self._log(method, path, None, t0, "connect_failed")
            return _Transient("connection refused", sent=False)
        if isinstance(exc, TimeoutError):
            self._log(method, path, status, t0, "timeout")
            return _Transient(f"timed out after {self.request_timeout:g}s", status)
        if isinstance(exc, aiohttp.ClientError | OSError):
            self._log(method, path, status, t0, type(exc).__name__)
            return _Transient(f"connection failed ({type(exc).__name__})", status)
        return None

    def _log(
        self, method: str, path: str, status: int | None, t0: float, error: str | None
    ) -> None:
        ms = round((self.clock.monotonic() - t0) * 1000, 1)
        if error is None:
            log.debug("http_request", method=method, path=path, status=status, ms=ms)
        else:
            log.debug("http_request", method=method, path=path, status=status, ms=ms, error=error)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        mode: Mode = "read",
        private: bool = False,
    ) -> msgspec.Raw:
        if private:
            self._require_credentials(path)
        attempt = 0
        while True:
            try:
                return await self._once(method, path, params, body, mode)
            except _Transient as t:
                failed = ProxyFailed if t.proxy else TransportError
                if mode == "order":
                    if not t.sent:
                        raise failed(f"order not sent: {t.reason}", endpoint=path) from None
                    raise OutcomeUnknown(
                        f"order request failed ({t.reason}); the order may exist",
                        http_status=t.status,
                        endpoint=path,
                    ) from None
                if attempt >= self.max_get_retries:
                    raise failed(
                        f"{t.reason} (gave up after {attempt + 1} attempts)",
                        http_status=t.status,
                        endpoint=path,
                    ) from None
                delay = min(self.retry_max_delay, self.retry_base_delay * (2**attempt))
                attempt += 1
                await self.clock.sleep(delay)

    # ------------------------------------------------------------------ public

    async def token_list(self) -> list[TokenInfo]:
        data = await self._call("GET", P_TOKEN_LIST)
        return decode_data(data, list[TokenInfo] | None, P_TOKEN_LIST) or []

    async def agg_ticker(self) -> list[TokenInfo]:
        data = await self._call("GET", P_AGG_TICKER, params={"dataType": "aggregate"})
        return decode_data(data, list[TokenInfo] | None, P_AGG_TICKER) or []

    async def ticker(self, symbol: str) -> Ticker:
        data = await self._call("GET", P_TICKER, params={"symbol": symbol})
        return decode_data(data, Ticker, P_TICKER)

    async def exchange_info(self) -> ExchangeInfo:
        data = await self._call("GET", P_EXCHANGE_INFO)
        raw: RawExchangeInfo = decode_data(data, RawExchangeInfo, P_EXCHANGE_INFO)
        return ExchangeInfo([SymbolFilters.from_raw(s) for s in raw.symbols or ()])

    async def depth(self, symbol: str, limit: int = 20) -> Depth:
        """The order book of ``symbol`` (``ALPHA_22USDT``): ``limit`` levels a side."""
        params = {"symbol": symbol, "limit": str(limit)}
        data = await self._call("GET", P_DEPTH, params=params)
        depth = decode_data(data, Depth | None, P_DEPTH) or Depth(symbol=symbol)
        return depth

    async def klines(self, symbol: str, interval: str = "1m", limit: int = 60) -> list[Kline]:
        """The last ``limit`` candles of ``symbol`` (``1m``, ``5m``, ``1h``, ``1d`` ...)."""
        params = {"symbol": symbol, "interval": interval, "limit": str(limit)}
        data = await self._call("GET", P_KLINES, params=params)
        rows = decode_data(data, list[KlineRow] | None, P_KLINES) or []
        return [Kline.from_row(row, P_KLINES, i) for i, row in enumerate(rows)]

    async def token(self, symbol_or_name: str) -> TokenInfo:
        """The token with this plain symbol (``KOGE``) or alphaId (``ALPHA_22``), fresh from
        the token list (mulPoint changes from day to day, so nothing is cached)."""
        found = find_token(await self.token_list(), symbol_or_name)
        if found is not None:
            return found
        raise UnknownToken(f"no token {symbol_or_name!r} in the token list", endpoint=P_TOKEN_LIST)

    # ------------------------------------------------------------------ private

    async def user_volume(self) -> UserVolume:
        data = await self._call("GET", P_USER_VOLUME, private=True)
        raw = decode_data(data, RawUserVolume | None, P_USER_VOLUME) or RawUserVolume()
        return UserVolume.from_raw(raw)

    async def place_oto(self, req: OtoOrderRequest) -> OtoPlaced:
        """Place an OTO. Never retried: see ``OutcomeUnknown``. A refusal is an
        ``OrderRejected`` (subclass by code); a risk challenge on a reply that placed the
        OTO anyway is a ``RiskChallenge`` whose ``placed`` is the ``OtoPlaced``."""
        return await self._place(
            P_OTO_PLACE, req.to_body(), OtoPlaced, "OTO accepted but its ids are unreadable"
        )

    async def place_limit(self, req: LimitOrderRequest) -> str:
        """Place a plain limit order; returns its order id. Never retried. Refusals and
        risk challenges as for ``place_oto`` (``RiskChallenge.placed`` is the id)."""
        oid = await self._place(
            P_LIMIT_PLACE, req.to_body(), OrderId, "order accepted but its id is unreadable"
        )
        return str(oid)

    async def _place(self, path: str, body: bytes, tp: object, unreadable: str) -> Any:
        """POST an order once; its reply decoded as ``tp`` (ids unreadable: OutcomeUnknown)."""
        try:
            data = await self._call("POST", path, body=body, mode="order", private=True)
        except RiskChallenge as exc:
            _adopt_ids(exc, tp, path)
            raise
        try:
            return decode_data(data, tp, path)
        except BadResponse as exc:
            raise OutcomeUnknown(f"{unreadable} ({exc.message})", endpoint=path) from None

    async def cancel(self, order_id: str, symbol: str) -> None:
        """Cancel an open order (for an OTO: its working order cancels both legs).

        Raises ``OrderNotOpen`` when the exchange says the order does not exist or is
        already filled/cancelled; that includes a retry after a lost reply whose first
        attempt did cancel it, so the caller checks the order's final state via REST.
        """
        body = msgspec.json.encode({"orderId": str(order_id), "symbol": symbol})
        await self._call("POST", P_CANCEL, body=body, mode="cancel", private=True)

    async def open_orders(self, side: str | None = None) -> list[OpenOrder]:
        data = await self._call("GET", P_OPEN_ORDERS, params={"side": side or ""}, private=True)
        return decode_data(data, list[OpenOrder] | None, P_OPEN_ORDERS) or []

    async def order_history(
        self,
        *,
        start_ms: int,
        end_ms: int,
        page: int = 1,
        rows: int = 100,
        status: str | None = None,
    ) -> list[HistoryOrder]:
        params = {"page": str(page), "rows": str(rows)}
        if status:
            params["orderStatus"] = status
        params["startTime"] = str(start_ms)
        params["endTime"] = str(end_ms)
        data = await self._call("GET", P_HISTORY, params=params, private=True)
        return decode_data(data, list[HistoryOrder] | None, P_HISTORY) or []

    async def user_trades(self, order_id: str, symbol: str) -> list[UserTrade]:
        params = {"orderId": str(order_id), "symbol": symbol}
        data = await self._call("GET", P_USER_TRADES, params=params, private=True)
        return decode_data(data, list[UserTrade] | None, P_USER_TRADES) or []

    async def listen_key(self) -> str:
        """A fresh listen key for the user stream (asking again is harmless, so retried)."""
        data = await self._call("POST", P_LISTEN_KEY, private=True)
        key = decode_data(data, str | None, P_LISTEN_KEY)
        if not key:
            raise BadResponse("listen key missing in reply", endpoint=P_LISTEN_KEY)
        return key

    async def user_score(self) -> UserScore:
        """The Alpha points the exchange computed: the last 15 UTC days and their sum."""
        data = await self._call("GET", P_USER_SCORE, private=True)
        score = decode_data(data, UserScore | None, P_USER_SCORE) or UserScore()
        return score

    async def balances(self) -> list[AssetBalance]:
        """Every asset with its USDT valuation: USDT and the Alpha tokens held."""
        params = {"needAlphaAsset": "1", "quoteAsset": "USDT"}
        data = await self._call("GET", P_BALANCES, params=params, private=True)
        rows = decode_data(data, list[AssetBalance] | None, P_BALANCES) or []
        return rows

    async def wallet(self) -> list[WalletBalance]:
        data = await self._call("GET", P_WALLET, params={"includeCex": "1"}, private=True)
        raw = decode_data(data, RawWallet | None, P_WALLET)
        return list(raw.items or ()) if raw is not None else []


def _order_outcome(err: RiskChallenge, payload: bytes, status: int, path: str) -> None:
    """A risk challenge on an order reply: unless the reply plainly refused the order
    (``success: false``), the order may exist; keep the reply's data for its ids."""
    try:
        env = parse_envelope(payload, status, path)
    except BadResponse:
        env = None
    if env is not None and not env.ok:
        return
    err.may_exist = True
    err.message += "; the order may have been placed anyway: look it up"
    if env is not None and bytes(env.data) not in (b"null", b""):
        err._reply_data = env.data


def _adopt_ids(err: RiskChallenge, tp: object, path: str) -> None:
    """Attach what the exchange placed despite the challenge (``err.placed``)."""
    data = err._reply_data
    if data is None:
        return
    try:
        placed = decode_data(data, tp, path)
    except BadResponse:
        return  # may_exist stays True: the caller looks the order up
    err.placed = placed if isinstance(placed, OtoPlaced) else str(placed)
    ids = (
        f"working {placed.working_order_id}, pending {placed.pending_order_id}"
        if isinstance(placed, OtoPlaced)
        else f"order {placed}"
    )
    err.message = err.message.replace("may have been placed anyway", f"was placed ({ids})")
