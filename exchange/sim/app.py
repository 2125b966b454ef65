"""Assemble the sim's aiohttp application: Binance paths, the user stream, the admin API,
and the middleware that counts requests and injects HTTP faults.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from exchange.auth import SESSION_COOKIE
from exchange.sim.admin import PREFIX, AdminRoutes
from exchange.sim.codes import SimError
from exchange.sim.engine import SimEngine
from exchange.sim.faults import echo_secrets_body
from exchange.sim.rest import BinanceRoutes, error_response
from exchange.sim.rest_account import AccountRoutes
from exchange.sim.rest_market import MarketRoutes
from exchange.sim.stream import StreamHub

log = structlog.get_logger(__name__)

STREAM_PATH = "/w3w/stream"
ENGINE_KEY: web.AppKey[SimEngine] = web.AppKey("sim_engine", SimEngine)


def _fault_middleware(engine: SimEngine):
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        engine.roll_day()  # close a UTC day that ended before this request changes anything
        path = request.path
        if path.startswith(PREFIX):
            return await handler(request)
        account = request.cookies.get(SESSION_COOKIE)
        if account:
            engine.account(account).requests[path] += 1
        else:
            engine.anonymous_requests[path] += 1
        f = engine.faults
        if f.http_applies(path, account) and (path != STREAM_PATH or f.paths):
            if f.rate_limit_next > 0 or engine.draw(f.rate_limit_rate):
                f.rate_limit_next = max(0, f.rate_limit_next - 1)
                return web.json_response(
                    {"code": -1003, "msg": "Too many requests."},
                    status=f.rate_limit_status,
                    headers={"Retry-After": f"{f.retry_after:g}"},
                )
            if f.echo_secrets:
                return web.json_response(echo_secrets_body(request.headers))
            if f.error_next > 0 or engine.draw(f.error_rate):
                f.error_next = max(0, f.error_next - 1)
                return web.Response(
                    status=f.error_status,
                    text="<html><body>Service Unavailable</body></html>",
                    content_type="text/html",
                )
            if f.hold:
                engine.held += 1
                engine.hold_seen.set()
                try:
                    while engine.faults.hold and engine.faults.http_applies(path, account):
                        await engine.faults_changed.wait()
                finally:
                    engine.held -= 1
            if f.hang_next > 0 or engine.draw(f.hang_rate):
                f.hang_next = max(0, f.hang_next - 1)
                if f.hang_after:
                    response = await _handle(request, handler)
                    await engine.clock.sleep(f.hang_seconds)
                    return response
                await engine.clock.sleep(f.hang_seconds)
        return await _handle(request, handler)

    return middleware


async def _handle(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except SimError as err:
        return error_response(err)


def make_app(engine: SimEngine) -> web.Application:
    """An app serving ``engine``; the engine's ticker starts and stops with the app."""
    app = web.Application(middlewares=[_fault_middleware(engine)])
    app[ENGINE_KEY] = engine
    hub = StreamHub(engine)
    engine.hub = hub
    BinanceRoutes(engine).add_to(app)
    MarketRoutes(engine).add_to(app)
    AccountRoutes(engine).add_to(app)
    AdminRoutes(engine).add_to(app)
    app.router.add_get(STREAM_PATH, hub.handle)

    async def on_startup(_app: web.Application) -> None:
        engine.start()

    async def on_shutdown(_app: web.Application) -> None:
        hub.disconnect()

    async def on_cleanup(_app: web.Application) -> None:
        await engine.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app
