"""Fixtures for the sim's tests: a running SimHarness and plain-aiohttp browser sessions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from exchange.sim.testing import SimHarness

P = "/bapi/defi/v1/private/alpha-trade"
PATHS = {
    "token_list": "/bapi/defi/v1/public/wallet-direct/buw/wallet/cex/alpha/all/token/list",
    "agg_ticker": "/bapi/defi/v1/public/alpha-trade/aggTicker24?dataType=aggregate",
    "ticker": "/bapi/defi/v1/public/alpha-trade/ticker?symbol=ALPHA_22USDT",
    "exchange_info": "/bapi/defi/v1/public/alpha-trade/get-exchange-info",
    "user_volume": "/bapi/defi/v1/private/wallet-direct/buw/wallet/today/user-volume",
    "oto": "/bapi/asset/v1/private/alpha-trade/oto-order/place",
    "limit": "/bapi/asset/v1/private/alpha-trade/order/place",
    "cancel": f"{P}/order/cancel",
    "open_orders": f"{P}/order/get-open-order",
    "history": f"{P}/order/get-order-history-merge?page=1&rows=100",
    "user_trades": f"{P}/order/get-user-trades",
    "listen_key": f"{P}/get-listen-key",
    "wallet": "/bapi/defi/v1/private/wallet-direct/cloud-wallet/alpha?includeCex=1",
    "depth": "/bapi/defi/v1/public/alpha-trade/fullDepth",
    "klines": "/bapi/defi/v1/public/alpha-trade/klines",
    "agg_klines": "/bapi/defi/v1/public/alpha-trade/agg-klines",
    "user_score": "/bapi/defi/v1/private/wallet-direct/buw/tge/common/user-score",
    "assets": "/bapi/asset/v2/private/asset-service/wallet/asset",
}


def koge_oto(price: str = "48.1", qty: str = "0.2082", pending: str = "47.5") -> dict[str, Any]:
    """An OTO body as the browser sends it: prices/qty as JSON numbers, amount a string."""
    return oto_body("ALPHA_22", price, qty, pending)


def oto_body(base: str, price: str, qty: str, pending: str) -> dict[str, Any]:
    """An OTO body for any token (``base`` is its alphaId), as ``koge_oto``."""
    amount = (Decimal(price) * Decimal(qty)).quantize(Decimal("0.00000001"), rounding="ROUND_DOWN")
    return {
        "baseAsset": base,
        "quoteAsset": "USDT",
        "workingSide": "BUY",
        "workingPrice": float(price),
        "workingQuantity": float(qty),
        "paymentDetails": [{"amount": str(amount), "paymentWalletType": "CARD"}],
        "pendingPrice": float(pending),
    }


class Browser:
    """A logged-in browser session for one account, speaking plain HTTP to the sim."""

    def __init__(self, harness: SimHarness, session: aiohttp.ClientSession) -> None:
        self.h = harness
        self.s = session

    async def get(self, name_or_path: str, **params: Any) -> dict:
        path = PATHS.get(name_or_path, name_or_path)
        async with self.s.get(self.h.base_url + path, params=params or None) as resp:
            return await resp.json(content_type=None)

    async def post(self, name_or_path: str, body: Any = None) -> dict:
        path = PATHS.get(name_or_path, name_or_path)
        async with self.s.post(self.h.base_url + path, json=body) as resp:
            return await resp.json(content_type=None)

    async def agg_klines(self, symbol: str, **params: str) -> dict:
        """``agg-klines`` of a token, found (like the web page) by chain and contract."""
        tokens = (await self.get("token_list"))["data"]
        token = next(t for t in tokens if t["symbol"] == symbol)
        return await self.get(
            "agg_klines",
            chainId=token["chainId"],
            tokenAddress=token["contractAddress"],
            dataType="aggregate",
            **params,
        )

    async def raw(self, method: str, name_or_path: str, body: Any = None) -> aiohttp.ClientResponse:
        path = PATHS.get(name_or_path, name_or_path)
        resp = await self.s.request(method, self.h.base_url + path, json=body)
        await resp.read()
        return resp

    @asynccontextmanager
    async def stream(self) -> AsyncIterator[UserStreamReader]:
        key = (await self.post("listen_key"))["data"]
        ws = await self.s.ws_connect(self.h.ws_url)
        reader = UserStreamReader(ws, key)
        await ws.send_json({"method": "SUBSCRIBE", "params": [f"alpha@{key}"], "id": 2})
        reader.ack = await ws.receive_json(timeout=5)
        try:
            yield reader
        finally:
            await ws.close()


class UserStreamReader:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, key: str) -> None:
        self.ws = ws
        self.key = key
        self.ack: dict | None = None

    async def next(self, wait: float = 5.0) -> dict:
        """The next pushed message (the whole ``{"stream","data"}`` object)."""
        return await self.ws.receive_json(timeout=wait)

    async def reports(self, n: int, wait: float = 5.0) -> list[dict]:
        return [(await self.next(wait))["data"] for _ in range(n)]

    async def closed(self, wait: float = 5.0) -> bool:
        """True once the server closes the connection (messages before it are skipped)."""
        async with asyncio.timeout(wait):
            while True:
                msg = await self.ws.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    return True


@pytest.fixture
async def harness() -> AsyncIterator[SimHarness]:
    async with SimHarness(price_interval=0) as h:
        yield h


@asynccontextmanager
async def open_browser(harness: SimHarness, account: str) -> AsyncIterator[Browser]:
    """A browser session on a harness of the test's own (not the ``harness`` fixture)."""
    creds = harness.credentials(account)
    async with aiohttp.ClientSession(cookies=creds.cookies, headers=creds.headers) as s:
        yield Browser(harness, s)


@pytest.fixture
async def browser_for(harness: SimHarness):
    sessions: list[aiohttp.ClientSession] = []

    def make(account: str) -> Browser:
        creds = harness.credentials(account)
        s = aiohttp.ClientSession(cookies=creds.cookies, headers=creds.headers)
        sessions.append(s)
        return Browser(harness, s)

    yield make
    for s in sessions:
        await s.close()


@pytest.fixture
async def alice(browser_for) -> Browser:
    return browser_for("alice")


async def advance_to_midnight(harness: SimHarness, offset: float) -> None:
    """Move the sim clock to ``offset`` seconds from the next UTC midnight (< 0: before)."""
    now = harness.sim.clock.time()
    midnight = (now // 86_400 + 1) * 86_400  # UTC midnights are whole days of epoch time
    await harness.admin.advance_time(midnight + offset - now)
