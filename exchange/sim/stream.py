"""The user stream at ``/w3w/stream``: listen keys, SUBSCRIBE, and executionReport pushes.

Protocol as captured: the client sends ``{"method":"SUBSCRIBE","params":["alpha@<key>"],
"id":N}``, the server acks ``{"result":null,"id":N}`` and then pushes
``{"stream":"alpha@<key>","data":{...executionReport...}}``. Each connection has one
writer task fed by a queue, so pushes keep their order and the engine never awaits.
Keys expire ``listen_key_ttl`` seconds (sim clock) after issue; a connection subscribed to
an expired key is closed, which is what a client sees when its key dies.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import WSMsgType, web

from exchange.sim.numbers import dumps

if TYPE_CHECKING:
    from exchange.sim.engine import SimEngine

log = structlog.get_logger(__name__)

_CLOSE = object()


@dataclass
class ListenKey:
    account: str
    expires_at: float


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    keys: dict[str, str] = field(default_factory=dict)  # key -> account
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    closing: bool = False

    def send(self, obj: Any) -> None:
        if not self.closing:
            self.queue.put_nowait(obj)

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.queue.put_nowait(_CLOSE)

    async def writer(self) -> None:
        while True:
            item = await self.queue.get()
            if item is _CLOSE:
                await self.ws.close()
                return
            try:
                await self.ws.send_str(dumps(item))
            except (ConnectionError, RuntimeError):
                return


class StreamHub:
    def __init__(self, engine: SimEngine) -> None:
        self.engine = engine
        self.keys: dict[str, ListenKey] = {}
        self.subs: dict[str, set[Connection]] = {}
        self.conns: set[Connection] = set()
        self.sent = 0
        self.dropped = 0
        self.connects = 0

    # -- keys -----------------------------------------------------------------------------

    def new_key(self, account: str) -> str:
        key = secrets.token_hex(16)
        self.keys[key] = ListenKey(account, self.engine.clock.time() + self.engine.listen_key_ttl)
        return key

    def _valid(self, key: str) -> ListenKey | None:
        lk = self.keys.get(key)
        if lk is None or lk.expires_at <= self.engine.clock.time():
            return None
        return lk

    def expire_keys(self) -> None:
        """Close connections holding an expired key (after the sim clock moved)."""
        now = self.engine.clock.time()
        for key in [k for k, lk in self.keys.items() if lk.expires_at <= now]:
            del self.keys[key]
        for conn in list(self.conns):
            if any(k not in self.keys for k in conn.keys):
                conn.close()

    # -- pushes ---------------------------------------------------------------------------

    def publish(self, account: str, data: dict[str, Any]) -> None:
        conns = self.subs.get(account)
        if not conns:
            return
        if self.engine.draw(self.engine.faults.drop_events):
            self.dropped += 1
            return
        for conn in conns:
            for key, acc in conn.keys.items():
                if acc == account:
                    conn.send({"stream": f"alpha@{key}", "data": data})
                    self.sent += 1

    def disconnect(self, account: str | None = None) -> int:
        """Close every stream connection (or only ``account``'s); returns how many."""
        targets = list(self.conns if account is None else self.subs.get(account, set()))
        for conn in targets:
            conn.close()
        return len(targets)

    def stats(self) -> dict[str, Any]:
        return {
            "connections": len(self.conns),
            "subscribed_accounts": sorted(a for a, s in self.subs.items() if s),
            "sent": self.sent,
            "dropped": self.dropped,
            "connects": self.connects,
        }

    # -- the websocket handler ------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Connection(ws)
        self.conns.add(conn)
        self.connects += 1
        loop = asyncio.get_running_loop()
        writer = loop.create_task(conn.writer())
        every = self.engine.faults.disconnect_every
        if every > 0:
            conn.timers.append(loop.call_later(every, conn.close))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                self._on_message(conn, msg.data)
        finally:
            conn.closing = True
            for t in conn.timers:
                t.cancel()
            self.conns.discard(conn)
            for acc in set(conn.keys.values()):
                subs = self.subs.get(acc)
                if subs is not None:
                    subs.discard(conn)
            if not writer.done():
                conn.queue.put_nowait(_CLOSE)
                try:
                    await asyncio.wait_for(writer, 1.0)
                except (TimeoutError, asyncio.CancelledError):
                    writer.cancel()
        return ws

    def _on_message(self, conn: Connection, text: str) -> None:
        try:
            req = json.loads(text)
        except ValueError:
            conn.send({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None})
            return
        if not isinstance(req, dict):
            conn.send({"error": {"code": 3, "msg": "Invalid request"}, "id": None})
            return
        method = req.get("method")
        req_id = req.get("id")
        params = req.get("params") or []
        if method == "SUBSCRIBE":
            bad = False
            for p in params:
                key = str(p).removeprefix("alpha@")
                lk = self._valid(key) if str(p).startswith("alpha@") else None
                if lk is None:
                    bad = True
                    continue
                conn.keys[key] = lk.account
                self.subs.setdefault(lk.account, set()).add(conn)
                delay = lk.expires_at - self.engine.clock.time()
                conn.timers.append(asyncio.get_running_loop().call_later(delay, self.expire_keys))
            conn.send({"result": None, "id": req_id})
            if bad:
                conn.close()  # an unknown or expired key: the stream ends
        elif method == "UNSUBSCRIBE":
            for p in params:
                acc = conn.keys.pop(str(p).removeprefix("alpha@"), None)
                if acc is not None and acc not in conn.keys.values():
                    self.subs.get(acc, set()).discard(conn)
            conn.send({"result": None, "id": req_id})
        elif method == "LIST_SUBSCRIPTIONS":
            conn.send({"result": [f"alpha@{k}" for k in conn.keys], "id": req_id})
        else:
            conn.send({"error": {"code": 2, "msg": "Invalid request"}, "id": req_id})
