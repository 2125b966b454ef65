"""What every other part's tests use: the sim running inside the test's own event loop.

``SimHarness`` starts the app on 127.0.0.1 with a free port and hands out valid browser
sessions; ``SimAdmin`` is a typed async client for ``/sim/v1/*``. Tests default to a calm
market (volatility 0, spread 0: one price for buyers and sellers) unless they ask
otherwise; ``spread=None`` (or ``volatility=None``) keeps each token's own from
``tokens.yaml`` or the scenario.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp import web

from exchange.auth import Credentials, csrf_for
from exchange.sim.app import STREAM_PATH, make_app
from exchange.sim.engine import SimEngine


class SimAdmin:
    """Typed async wrapper over the sim's admin API."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self._base = base_url.rstrip("/") + "/sim/v1"
        self._session = session

    async def _get(self, path: str) -> Any:
        async with self._session.get(self._base + path) as resp:
            return await self._unwrap(resp)

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        clean = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in body.items()}
        async with self._session.post(self._base + path, json=clean) as resp:
            return await self._unwrap(resp)

    @staticmethod
    async def _unwrap(resp: aiohttp.ClientResponse) -> Any:
        body = await resp.json()
        if not body.get("ok"):
            raise ValueError(f"sim admin {resp.url.path}: {body.get('error')}")
        return body.get("data")

    async def state(self) -> dict:
        return await self._get("/state")

    async def account(self, account: str) -> dict:
        """balances, volume_today (as user-volume would show, before jitter), orders, oto_count, requests."""
        return await self._get(f"/accounts/{account}")

    async def set_faults(self, **faults: Any) -> dict:
        return await self._post("/faults", faults)

    async def set_price(self, symbol: str, price: Decimal) -> dict:
        return await self._post("/price", {"symbol": symbol, "price": price})

    async def set_config(self, **opts: Any) -> dict:
        return await self._post("/config", opts)

    async def set_volume(self, account: str, token: str, volume: Decimal) -> None:
        await self._post("/volume", {"account": account, "token": token, "volume": volume})

    async def advance_time(self, seconds: float) -> dict:
        return await self._post("/time", {"advance": seconds})

    # extras beyond the contract
    async def set_token(self, symbol: str, **fields: Any) -> dict:
        """mul_point (None: the 30-day rule), volatility, price, spread, listing_time (ms),
        chain_name, chain_id, status (TRADING | BREAK | DELISTED); returns the token's view."""
        return await self._post("/token", {"symbol": symbol, **fields})

    async def set_balance(self, account: str, asset: str, free: Decimal) -> dict:
        return await self._post("/balance", {"account": account, "asset": asset, "free": free})

    async def disconnect_streams(self, account: str | None = None) -> int:
        return (await self._post("/stream/disconnect", {"account": account}))["closed"]


class SimHarness:
    """``async with SimHarness(fill_delay=0) as sim:`` -> ``sim.base_url``, ``sim.ws_url``."""

    def __init__(self, **sim_options: Any) -> None:
        sim_options.setdefault("volatility", 0)
        sim_options.setdefault("spread", 0)
        self._options = sim_options
        self.base_url = ""
        self.ws_url = ""
        self.sim: SimEngine | None = None
        self.admin: SimAdmin | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SimHarness:
        self.sim = SimEngine(**self._options)
        self._runner = web.AppRunner(make_app(self.sim), handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        self.ws_url = f"ws://{host}:{port}{STREAM_PATH}"
        self._session = aiohttp.ClientSession()
        self.admin = SimAdmin(self.base_url, self._session)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def credentials(self, account: str) -> Credentials:
        """A valid browser session for ``account`` (created on first use by the sim)."""
        cr00 = "cr00" + hashlib.sha256(account.encode()).hexdigest()[:28]
        return Credentials(
            cookies={"p20t": account, "cr00": cr00, "logined": "y"},
            headers={
                "csrftoken": csrf_for(cr00),
                "clienttype": "web",
                "bnc-uuid": "sim-uuid-" + account,
                "device-info": "sim-device-info",
                "fvideo-id": "sim-fvideo-id",
                "fvideo-token": "sim-fvideo-token",
                "user-agent": "Mozilla/5.0 (sim)",
                "lang": "en",
            },
        )
