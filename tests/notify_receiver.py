"""A real local HTTP receiver for notification tests: what Apprise's ``json://`` URL posts.

``async with Receiver() as rx:`` serves on 127.0.0.1:<free port> in the test's loop;
``rx.url()`` is the Apprise URL to configure (its path holds a made-up token, a secret
the tests look for in logs and output). ``rx.mode`` is switchable at any time: ``ok``
(200), ``fail`` (500), ``hang`` (never answers until the receiver closes) or ``drip``
(``200`` with ``Content-Length: 100000``, then one byte every 2 s until the receiver
closes: no socket timeout ever fires). Every POST is recorded when it arrives, whatever
the mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

TOKEN = "hook-s3cr3t-T0KEN-4711"


class Receiver:
    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.posts: list[dict[str, Any]] = []  # {"path", "body" (text), "json", "at"}
        self._arrived = asyncio.Condition()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, token: str = TOKEN) -> str:
        return f"json://127.0.0.1:{self.port}/{token}"

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        text = (await request.read()).decode("utf-8", "replace")
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        async with self._arrived:
            self.posts.append(
                {"path": request.path, "body": text, "json": doc, "at": time.monotonic()}
            )
            self._arrived.notify_all()
        if self.mode == "hang":
            await self._release.wait()
        if self.mode == "drip":
            return await self._drip(request)
        if self.mode == "fail":
            return web.Response(status=500, text="internal error")
        return web.json_response({"ok": True})

    async def _drip(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=200)
        resp.content_length = 100_000
        await resp.prepare(request)
        while not self._release.is_set():
            await resp.write(b" ")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._release.wait()
        return resp

    def messages(self, title_has: str = "") -> list[dict[str, Any]]:
        """The JSON bodies posted (Apprise: version, title, message, type)."""
        return [
            p["json"]
            for p in self.posts
            if isinstance(p["json"], dict) and title_has in str(p["json"].get("title", ""))
        ]

    async def wait(self, pred: Callable[[Receiver], Any], within: float, what: str) -> Any:
        """Until ``pred(self)`` is truthy (re-checked on every arrival), or fail."""
        async with self._arrived:
            try:
                async with asyncio.timeout(within):
                    while not (got := pred(self)):
                        await self._arrived.wait()
            except TimeoutError:
                raise AssertionError(
                    f"gave up waiting for {what}; received: {[p['body'][:200] for p in self.posts]}"
                ) from None
        return got
