"""The sim's admin API under ``/sim/v1/`` (never a Binance path, never faulted).

Tests and benchmarks read the whole state and steer faults, prices, config, volumes and
time through it; ``testing.SimAdmin`` is its typed client.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from exchange.sim.codes import SimError
from exchange.sim.numbers import dec, dumps

if TYPE_CHECKING:
    from exchange.sim.engine import SimEngine

PREFIX = "/sim/v1"


def _ok(data: Any = None) -> web.Response:
    return web.Response(text=dumps({"ok": True, "data": data}), content_type="application/json")


def _bad(message: str, status: int = 400) -> web.Response:
    return web.Response(
        text=json.dumps({"ok": False, "error": message}),
        status=status,
        content_type="application/json",
    )


class AdminRoutes:
    def __init__(self, engine: SimEngine) -> None:
        self.engine = engine

    def add_to(self, app: web.Application) -> None:
        r = app.router
        r.add_get(f"{PREFIX}/state", self.state)
        r.add_get(f"{PREFIX}/accounts/{{account}}", self.account)
        r.add_post(f"{PREFIX}/faults", self.faults)
        r.add_post(f"{PREFIX}/price", self.price)
        r.add_post(f"{PREFIX}/config", self.config)
        r.add_post(f"{PREFIX}/volume", self.volume)
        r.add_post(f"{PREFIX}/time", self.time)
        r.add_post(f"{PREFIX}/token", self.token)
        r.add_post(f"{PREFIX}/balance", self.balance)
        r.add_post(f"{PREFIX}/stream/disconnect", self.disconnect)

    async def _json(self, request: web.Request) -> dict:
        body = await request.json() if request.can_read_body else {}
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return body

    @staticmethod
    def _guard(fn):
        async def wrapper(self, request: web.Request) -> web.Response:
            try:
                return await fn(self, request)
            except (ValueError, KeyError, TypeError, SimError) as exc:
                return _bad(str(exc))

        return wrapper

    @_guard
    async def state(self, request: web.Request) -> web.Response:
        return _ok(self.engine.state())

    @_guard
    async def account(self, request: web.Request) -> web.Response:
        name = request.match_info["account"]
        acc = self.engine.account(name)
        return _ok(self.engine.account_view(acc))

    @_guard
    async def faults(self, request: web.Request) -> web.Response:
        self.engine.set_faults(**await self._json(request))
        return _ok(self.engine.faults.as_dict())

    @_guard
    async def price(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        self.engine.set_price(str(body["symbol"]), dec(body["price"]))
        t = self.engine.token(str(body["symbol"]))
        return _ok({"symbol": t.symbol, "price": str(self.engine.prices[t.alpha_id])})

    @_guard
    async def config(self, request: web.Request) -> web.Response:
        self.engine.set_config(**await self._json(request))
        return _ok(self.engine.config_view())

    @_guard
    async def volume(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        acc = self.engine.account(str(body["account"]))
        name = str(body["token"])
        token = self.engine.by_symbol.get(name)
        symbol = token.symbol if token is not None else name
        acc.volume.seed(self.engine.clock.time(), symbol, dec(body["volume"]))
        return _ok()

    @_guard
    async def time(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        self.engine.advance_time(float(body.get("advance", 0)))
        return _ok({"time": self.engine.clock.time(), "offset": self.engine.clock.offset})

    @_guard
    async def token(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        symbol = str(body.pop("symbol"))
        t = self.engine.set_token(symbol, **body)
        return _ok({"symbol": t.symbol, **self.engine.token_view(t)})

    @_guard
    async def balance(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        acc = self.engine.account(str(body["account"]))
        asset = str(body["asset"])
        key = asset if asset == "USDT" else self.engine.token(asset).alpha_id
        acc.bal(key).free = dec(body["free"])
        return _ok(self.engine.account_view(acc)["balances"])

    @_guard
    async def disconnect(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        account = body.get("account")
        return _ok(
            {"closed": self.engine.hub.disconnect(None if account is None else str(account))}
        )
