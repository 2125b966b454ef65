"""The Binance Alpha REST paths of the sim, with the real envelopes and number styles."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from exchange.sim import codes
from exchange.sim.numbers import ZERO, dumps, loads, plain, trunc8
from exchange.sim.universe import TokenSpec

if TYPE_CHECKING:
    from exchange.sim.engine import SimEngine

PUBLIC = "/bapi/defi/v1/public"
TOKEN_LIST = f"{PUBLIC}/wallet-direct/buw/wallet/cex/alpha/all/token/list"
AGG_TICKER = f"{PUBLIC}/alpha-trade/aggTicker24"
TICKER = f"{PUBLIC}/alpha-trade/ticker"
EXCHANGE_INFO = f"{PUBLIC}/alpha-trade/get-exchange-info"
USER_VOLUME = "/bapi/defi/v1/private/wallet-direct/buw/wallet/today/user-volume"
OTO_PLACE = "/bapi/asset/v1/private/alpha-trade/oto-order/place"
LIMIT_PLACE = "/bapi/asset/v1/private/alpha-trade/order/place"
CANCEL = "/bapi/defi/v1/private/alpha-trade/order/cancel"
OPEN_ORDERS = "/bapi/defi/v1/private/alpha-trade/order/get-open-order"
ORDER_HISTORY = "/bapi/defi/v1/private/alpha-trade/order/get-order-history-merge"
USER_TRADES = "/bapi/defi/v1/private/alpha-trade/order/get-user-trades"
LISTEN_KEY = "/bapi/defi/v1/private/alpha-trade/get-listen-key"
WALLET = "/bapi/defi/v1/private/wallet-direct/cloud-wallet/alpha"
ICON = "/images/web3-data/public/token/logos/{}.png"
DEFAULT_LISTING_MS = 1734687000000  # shown for a token without a listing time (KOGE's)


def envelope(data: Any) -> web.Response:
    body = {"code": "000000", "message": None, "messageDetail": None, "data": data, "success": True}
    return web.Response(text=dumps(body), content_type="application/json")


def error_response(err: codes.SimError) -> web.Response:
    return web.Response(
        text=dumps(err.body()),
        status=err.http_status,
        content_type="application/json",
        headers=err.headers,
    )


def _token_id(t: TokenSpec) -> str:
    return hashlib.md5(t.alpha_id.encode(), usedforsecurity=False).hexdigest().upper()


def _contract(t: TokenSpec) -> str:
    return t.contract_address or ""


class BinanceRoutes:
    def __init__(self, engine: SimEngine) -> None:
        self.engine = engine

    def add_to(self, app: web.Application) -> None:
        r = app.router
        r.add_get(TOKEN_LIST, self.token_list)
        r.add_get(AGG_TICKER, self.agg_ticker)
        r.add_get(TICKER, self.ticker)
        r.add_get(EXCHANGE_INFO, self.exchange_info)
        r.add_get(USER_VOLUME, self.user_volume)
        r.add_post(OTO_PLACE, self.place_oto)
        r.add_post(LIMIT_PLACE, self.place_limit)
        r.add_post(CANCEL, self.cancel)
        r.add_get(OPEN_ORDERS, self.open_orders)
        r.add_get(ORDER_HISTORY, self.order_history)
        r.add_get(USER_TRADES, self.user_trades)
        r.add_post(LISTEN_KEY, self.listen_key)
        r.add_get(WALLET, self.wallet)

    # -- public ---------------------------------------------------------------------------

    def _token_entry(self, t: TokenSpec) -> dict[str, Any]:
        price = self.engine.prices[t.alpha_id]
        opened = self.engine.open_prices[t.alpha_id]
        change = (price - opened) / opened * 100 if opened else ZERO
        return {
            "tokenId": _token_id(t),
            "chainId": t.chain_id,
            "chainIconUrl": "https://bin.bnbstatic.com/image/admin_mgs_image_upload/chain.png",
            "chainName": t.chain_name,
            "contractAddress": _contract(t),
            "name": t.name,
            "symbol": t.symbol,
            "iconUrl": "https://bin.bnbstatic.com" + ICON.format(_token_id(t)),
            "price": plain(price),
            "percentChange24h": plain(change.quantize(Decimal("0.01"))),
            "volume24h": "1000000",
            "marketCap": "10000000",
            "fdv": "10000000",
            "liquidity": "1000000",
            "totalSupply": "1000000000",
            "circulatingSupply": "100000000",
            "holders": "10000",
            "decimals": 18,
            "listingCex": False,
            "hotTag": False,
            "cexCoinName": "",
            "canTransfer": False,
            "denomination": 1,
            "offline": t.status != "TRADING",
            "tradeDecimal": 8,
            "alphaId": t.alpha_id,
            "offsell": t.status == "DELISTED",
            "priceHigh24h": plain(max(price, opened)),
            "priceLow24h": plain(min(price, opened)),
            "count24h": "100000",
            "onlineTge": False,
            "onlineAirdrop": False,
            "score": 100,
            "cexOffDisplay": False,
            "stockState": False,
            "listingTime": t.listing_time if t.listing_time is not None else DEFAULT_LISTING_MS,
            "mulPoint": self.engine.mul_point(t),
            "bnExclusiveState": False,
        }

    async def token_list(self, request: web.Request) -> web.Response:
        return envelope([self._token_entry(t) for t in self.engine.tokens.values()])

    async def agg_ticker(self, request: web.Request) -> web.Response:
        return envelope([self._token_entry(t) for t in self.engine.tokens.values()])

    async def ticker(self, request: web.Request) -> web.Response:
        t = self.engine.token(request.query.get("symbol", ""))
        price = self.engine.prices[t.alpha_id]
        opened = self.engine.open_prices[t.alpha_id]
        now = self.engine.now_ms()
        return envelope(
            {
                "symbol": t.pair,
                "priceChange": plain(price - opened),
                "priceChangePercent": plain(
                    ((price - opened) / opened * 100).quantize(Decimal("0.001"))
                ),
                "weightedAvgPrice": plain(price),
                "lastPrice": plain(price),
                "lastQty": "1.00000000",
                "openPrice": plain(opened),
                "highPrice": plain(max(price, opened)),
                "lowPrice": plain(min(price, opened)),
                "volume": "1000000.00000000",
                "quoteVolume": plain(trunc8(price * 1000000)),
                "openTime": now - 86_400_000,
                "closeTime": now,
                "firstId": 1,
                "lastId": 1000,
                "count": 1000,
            }
        )

    async def exchange_info(self, request: web.Request) -> web.Response:
        return envelope({"symbols": [_symbol_info(t) for t in self.engine.tokens.values()]})

    # -- private --------------------------------------------------------------------------

    def _auth(self, request: web.Request):
        return self.engine.authenticate(request.cookies, request.headers)

    async def _body(self, request: web.Request) -> Any:
        try:
            return loads(await request.read())
        except ValueError as exc:
            raise codes.bad_param("body is not JSON") from exc

    async def user_volume(self, request: web.Request) -> web.Response:
        acc = self._auth(request)
        vols = self.engine.user_volume(acc)
        rows: list[dict[str, Any]] = []
        total = ZERO
        for t in self.engine.tokens.values():
            v = vols.get(t.symbol, ZERO)
            if v > 0:
                rows.append({"icon": ICON.format(_token_id(t)), "tokenName": t.symbol, "volume": v})
                total += v
        for name, v in vols.items():  # seeded volumes of tokens not (or no longer) listed
            if name not in self.engine.by_symbol and v > 0:
                rows.append({"icon": ICON.format(name), "tokenName": name, "volume": v})
                total += v
        return envelope({"totalVolume": total, "tradeVolumeInfoList": rows})

    async def place_oto(self, request: web.Request) -> web.Response:
        acc = self._auth(request)
        body = await self._body(request)
        return self._placed(acc.name, self.engine.place_oto(acc, body))

    async def place_limit(self, request: web.Request) -> web.Response:
        acc = self._auth(request)
        body = await self._body(request)
        return self._placed(acc.name, self.engine.place_limit(acc, body))

    def _placed(self, account: str, data: Any) -> web.Response:
        """An accepted order's reply. The ``risk_challenge_accepted`` fault (one-shot per
        account) adds the risk-challenge headers to it: the order stays placed, as on the
        real exchange, where such a reply can still carry the order's ids."""
        response = envelope(data)
        challenged = self.engine.faults.risk_challenge_accepted
        if account in challenged:
            challenged.remove(account)
            response.headers.update(codes.risk_headers())
        return response

    async def cancel(self, request: web.Request) -> web.Response:
        acc = self._auth(request)
        body = await self._body(request)
        if not isinstance(body, dict):
            raise codes.bad_param("body")
        self.engine.cancel(acc, body.get("orderId"), body.get("symbol"))
        return envelope(None)

    async def open_orders(self, request: web.Request) -> web.Response:
        acc = self._auth(request)
        side = request.query.get("side") or None
        symbol = request.query.get("symbol") or None
        rows = [
            o.history_row()
            for o in acc.open_orders.values()
            if (side is None or o.side == side) and (symbol is None or o.token.pair == symbol)
        ]
        return envelope(rows)

    async def order_history(self, request: web.Request) -> web.Response:
        acc = self._auth(request)
        q = request.query
        try:
            page = max(1, int(q.get("page", "1")))
            rows = max(1, min(500, int(q.get("rows", "100"))))
            start = int(q["startTime"]) if q.get("startTime") else None
            end = int(q["endTime"]) if q.get("endTime") else None
        except ValueError as exc:
            raise codes.bad_param("page/rows/startTime/endTime") from exc
        statuses = set(q.get("orderStatus", "").split(",")) - {""}
        side = q.get("side") or None
        matched = []
        for o in reversed(acc.orders):  # newest first; creation times only go down
            if start is not None and o.created_ms < start:
                break
            if (
                (end is None or o.created_ms <= end)
                and (not statuses or o.status in statuses)
                and (side is None or o.side == side)
            ):
                matched.append(o)
        page_rows = [o.history_row() for o in matched[(page - 1) * rows : page * rows]]
        body = {
            "code": "000000",
            "message": None,
            "messageDetail": None,
            "data": page_rows,
            "total": len(matched),
            "success": True,
        }
        return web.Response(text=dumps(body), content_type="application/json")

    async def user_trades(self, request: web.Request) -> web.Response:
        acc = self._auth(request)
        try:
            oid = int(request.query.get("orderId", ""))
        except ValueError as exc:
            raise codes.bad_param("orderId") from exc
        order = self.engine.orders.get(oid)
        if order is None or order.account != acc.name:
            return envelope([])
        return envelope(order.trade_rows())

    async def listen_key(self, request: web.Request) -> web.Response:
        acc = self._auth(request)
        return envelope(self.engine.hub.new_key(acc.name))

    async def wallet(self, request: web.Request) -> web.Response:
        acc = self._auth(request)
        rows = []
        total = ZERO
        for t in self.engine.tokens.values():
            b = acc.balances.get(t.alpha_id)
            if b is None or b.free + b.locked == 0:
                continue
            amount = b.free + b.locked
            valuation = trunc8(amount * self.engine.quote(t).bid)
            total += valuation
            rows.append(
                {
                    "chainId": t.chain_id,
                    "contractAddress": _contract(t),
                    "cexAsset": False,
                    "name": t.name,
                    "symbol": t.symbol,
                    "tokenId": t.alpha_id,
                    "free": plain(b.free),
                    "freeze": "0",
                    "locked": plain(b.locked),
                    "withdrawing": "0",
                    "amount": plain(amount),
                    "valuation": plain(valuation),
                }
            )
        return envelope({"totalValuation": plain(total), "list": rows})


_FILTER_KEYS = (
    "minPrice",
    "maxPrice",
    "tickSize",
    "stepSize",
    "maxQty",
    "minQty",
    "limit",
    "minNotional",
    "maxNotional",
    "multiplierDown",
    "multiplierUp",
    "bidMultiplierUp",
    "askMultiplierUp",
    "bidMultiplierDown",
    "askMultiplierDown",
)


def _filter(kind: str, **values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"filterType": kind}
    for key in _FILTER_KEYS:
        out[key] = values.get(key)
    return out


def _exp(d: Decimal) -> int:
    """The exponent of a finite Decimal (the sim only holds finite ones)."""
    exp = d.as_tuple().exponent
    assert isinstance(exp, int), d
    return exp


def _symbol_info(t: TokenSpec) -> dict[str, Any]:
    def f8(d: Decimal) -> str:
        return format(d.quantize(Decimal("0.00000001")), "f") if _exp(d) >= -8 else plain(d)

    return {
        "symbol": t.pair,
        "status": t.status,
        "baseAsset": t.alpha_id,
        "quoteAsset": "USDT",
        "pricePrecision": max(8, -_exp(t.tick_size.normalize())),
        "quantityPrecision": 8,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "filters": [
            _filter(
                "PRICE_FILTER",
                minPrice=f8(t.min_price),
                maxPrice=plain(t.max_price),
                tickSize=f8(t.tick_size),
            ),
            _filter(
                "LOT_SIZE", stepSize=f8(t.step_size), maxQty=plain(t.max_qty), minQty=f8(t.min_qty)
            ),
            _filter("MAX_NUM_ORDERS", limit=t.max_open_orders),
            _filter("MIN_NOTIONAL", minNotional=plain(t.min_notional)),
            _filter("MAX_NOTIONAL", maxNotional=plain(t.max_notional)),
            _filter(
                "NOTIONAL", minNotional=plain(t.min_notional), maxNotional=plain(t.max_notional)
            ),
            _filter("PERCENT_PRICE", multiplierDown="0.00001", multiplierUp="100000"),
            _filter(
                "PERCENT_PRICE_BY_SIDE",
                bidMultiplierUp="100000",
                askMultiplierUp="100000",
                bidMultiplierDown="0.00001",
                askMultiplierDown="0.00001",
            ),
        ],
        "orderTypes": ["LIMIT"],
    }
