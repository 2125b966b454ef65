"""A tiny scripted bapi server for client tests: real aiohttp on 127.0.0.1.

Each path answers from a queue of scripted replies (the last one repeats), by default the
matching real sample. Every request is recorded so tests can check what was sent.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from tests.samples import SAMPLES

DEFAULTS = {
    "/bapi/defi/v1/public/wallet-direct/buw/wallet/cex/alpha/all/token/list": "aggticker24_koge_aop.json",
    "/bapi/defi/v1/public/alpha-trade/aggTicker24": "aggticker24_koge_aop.json",
    "/bapi/defi/v1/public/alpha-trade/ticker": "ticker.json",
    "/bapi/defi/v1/public/alpha-trade/get-exchange-info": "exchange_info.json",
    "/bapi/defi/v1/private/wallet-direct/buw/wallet/today/user-volume": "user_volume.json",
    "/bapi/asset/v1/private/alpha-trade/oto-order/place": "oto_place_response.json",
    "/bapi/asset/v1/private/alpha-trade/order/place": "limit_order_place_response.json",
    "/bapi/defi/v1/private/alpha-trade/order/cancel": "cancel_response.json",
    "/bapi/defi/v1/private/alpha-trade/order/get-open-order": "open_orders_empty.json",
    "/bapi/defi/v1/private/alpha-trade/order/get-order-history-merge": "order_history_merge.json",
    "/bapi/defi/v1/private/alpha-trade/order/get-user-trades": "user_trades.json",
    "/bapi/defi/v1/private/alpha-trade/get-listen-key": "listen_key.json",
    "/bapi/defi/v1/private/wallet-direct/cloud-wallet/alpha": "wallet_alpha.json",
    "/bapi/defi/v1/public/alpha-trade/fullDepth": "full_depth.json",
    "/bapi/defi/v1/public/alpha-trade/klines": "klines.json",
    "/bapi/defi/v1/private/wallet-direct/buw/tge/common/user-score": "user_score.json",
}


@dataclass
class Reply:
    status: int = 200
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer (until the server closes)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def envelope(
    data: object = None, *, code: str = "000000", message: str | None = None, success: bool = True
) -> bytes:
    return json.dumps(
        {"code": code, "message": message, "messageDetail": None, "data": data, "success": success}
    ).encode()


class FakeBapi:
    def __init__(self) -> None:
        self.script: dict[str, list[Reply]] = defaultdict(list)
        self.seen: list[Seen] = []
        self.hung = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)
        self.extra: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {}

    def on(self, path: str, *replies: Reply) -> None:
        self.script[path].extend(replies)

    def calls(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in self.extra:
            return await self.extra[path](request)
        self.seen.append(
            Seen(
                request.method,
                path,
                dict(request.query),
                dict(request.headers),
                await request.read(),
            )
        )
        queue = self.script.get(path)
        reply = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else None
        if reply is None:
            if path not in DEFAULTS:
                return web.Response(status=404, text="no such path")
            reply = Reply(body=sample(DEFAULTS[path]))
        if reply.hang:
            self.hung.set()
            await asyncio.Event().wait()
        return web.Response(
            status=reply.status,
            body=reply.body or b"",
            headers=reply.headers,
            content_type="application/json",
        )
