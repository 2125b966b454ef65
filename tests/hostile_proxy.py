"""A hostile proxy for tests: a real process in front of the sim that rewrites replies.

    python -m tests.hostile_proxy --upstream http://127.0.0.1:PORT --port 0 --rules rules.json

prints ``base_url=...`` and ``ws_url=...`` (flushed, like ``alphavol sim``) and passes REST
and the user-stream WebSocket through to the upstream, rewriting the JSON fields the rules
name with raw text a hostile server would write: bare ``NaN`` / ``Infinity`` tokens (JSON
has none), huge exponents (``1e999``), negative numbers, numbers as strings.

The rules file is re-read on every request, so a test switches a fault on mid-run by
rewriting it (atomically: write a temporary file, rename). Its shape::

    {"rules": [
      {"path": "user-volume",                       # substring of the request path
       "account": "bob",                            # optional: only this p20t session
       "field": "data.tradeVolumeInfoList[*].volume",
       "value": "NaN"}                              # raw JSON text, written verbatim
    ]}

``field`` is a dotted path from the top of the body: ``name``, ``[*]`` (every element),
``[3]`` (an index), ``[key=value]`` (the elements whose ``key`` equals ``value``). Only
fields that exist are rewritten. WebSocket text frames from the upstream are rewritten by
rules whose ``path`` matches the stream path (``/w3w/stream``); the account filter does not
apply there (the stream's upgrade request carries no session). ``GET /hostile/v1/stats``
answers how many fields each rule (by index) has rewritten so far.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from exchange.sim.cli import serve_app

ROOT = Path(__file__).resolve().parents[1]
SESSION_COOKIE = "p20t"
STATS_PATH = "/hostile/v1/stats"
HOP_BY_HOP = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-authenticate",
    }
)
_STEP = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")
_encoder = msgspec.json.Encoder(decimal_format="number")


def parse_field(field: str) -> list[tuple[str, Any]]:
    """``data.list[*].x`` -> ``[("key","data"), ("key","list"), ("all",None), ("key","x")]``."""
    steps: list[tuple[str, Any]] = []
    for key, sel in _STEP.findall(field):
        if key:
            steps.append(("key", key))
        elif sel == "*":
            steps.append(("all", None))
        elif sel.isdigit():
            steps.append(("index", int(sel)))
        elif "=" in sel:
            steps.append(("where", tuple(sel.split("=", 1))))
        else:
            raise ValueError(f"bad selector [{sel}] in {field!r}")
    if not steps or steps[-1][0] != "key":
        raise ValueError(f"field {field!r} must end with a key")
    return steps


def _mark(node: Any, steps: list[tuple[str, Any]], marker: str) -> int:
    """Put ``marker`` at every place ``steps`` reach in ``node``; how many were marked."""
    kind, arg = steps[0]
    rest = steps[1:]
    if kind == "key":
        if not isinstance(node, dict) or arg not in node:
            return 0
        if not rest:
            node[arg] = marker
            return 1
        return _mark(node[arg], rest, marker)
    if not isinstance(node, list):
        return 0
    if kind == "index":
        items = [node[arg]] if 0 <= arg < len(node) else []
    elif kind == "where":
        k, v = arg
        items = [i for i in node if isinstance(i, dict) and str(i.get(k)) == v]
    else:
        items = list(node)
    return sum(_mark(item, rest, marker) for item in items)


def rewrite(body: bytes, rules: list[tuple[int, dict]], stats: Counter) -> bytes:
    """``body`` with the rules' fields replaced by their raw values (unchanged if the body
    is not JSON or no field exists)."""
    try:
        doc = json.loads(body, parse_float=Decimal, parse_constant=str)
    except ValueError:
        return body
    values: dict[str, str] = {}
    for index, rule in rules:
        marker = f"\u0000hostile{index}\u0000"
        n = _mark(doc, parse_field(rule["field"]), marker)
        if n:
            stats[index] += n
            values[marker] = str(rule["value"])
    if not values:
        return body
    out = _encoder.encode(doc).decode()
    for marker, raw in values.items():
        out = out.replace(json.dumps(marker), raw)
    return out.encode()


class HostileProxy:
    def __init__(self, upstream: str, rules_path: Path) -> None:
        self.upstream = upstream.rstrip("/")
        self.rules_path = rules_path
        self.stats: Counter = Counter()
        self.session: aiohttp.ClientSession | None = None

    def rules_for(self, path: str, account: str | None) -> list[tuple[int, dict]]:
        """The rules that apply, read afresh from the file (a missing file: none)."""
        try:
            rules = json.loads(self.rules_path.read_text()).get("rules", [])
        except (OSError, ValueError):
            return []
        return [
            (i, r)
            for i, r in enumerate(rules)
            if r.get("path", "") in path and r.get("account") in (None, account)
        ]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(STATS_PATH, self.stats_view)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _app: web.Application) -> None:
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True
        )

    async def _stop(self, _app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    async def stats_view(self, request: web.Request) -> web.Response:
        return web.json_response({str(k): v for k, v in self.stats.items()})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("upgrade", "").lower() == "websocket":
            return await self.websocket(request)
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        try:
            async with self.session.request(
                request.method,
                self.upstream + request.path_qs,
                headers=headers,
                data=body or None,
                allow_redirects=False,
            ) as up:
                payload = await up.read()
                status = up.status
                out_headers = {k: v for k, v in up.headers.items() if k.lower() not in HOP_BY_HOP}
        except aiohttp.ClientError:
            return web.Response(status=502, text="upstream unreachable")
        rules = self.rules_for(request.path, request.cookies.get(SESSION_COOKIE))
        if rules:
            payload = rewrite(payload, rules, self.stats)
        return web.Response(status=status, body=payload, headers=out_headers)

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        assert self.session is not None
        client = web.WebSocketResponse(autoping=True)
        await client.prepare(request)
        url = self.upstream.replace("http", "ws", 1) + request.path_qs
        try:
            upstream = await self.session.ws_connect(url, autoping=True)
        except (aiohttp.ClientError, OSError):
            await client.close()
            return client

        async def down() -> None:  # upstream -> client, rewritten
            async for msg in upstream:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    rules = self.rules_for(request.path, None)
                    text = msg.data
                    if rules:
                        text = rewrite(text.encode(), rules, self.stats).decode()
                    await client.send_str(text)
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    await client.send_bytes(msg.data)
                else:
                    break

        async def up() -> None:  # client -> upstream, as is
            async for msg in client:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    await upstream.send_str(msg.data)
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    await upstream.send_bytes(msg.data)
                else:
                    break

        tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            await upstream.close()
            await client.close()
        return client


async def serve(upstream: str, host: str, port: int, rules: Path) -> None:
    await serve_app(HostileProxy(upstream, rules).app(), host, port, shutdown_timeout=0.5)


class ProxyProcess:
    """The proxy as a subprocess, for tests: ``async with ProxyProcess(sim.base_url, dir)
    as proxy:`` -> ``proxy.base_url``, ``proxy.ws_url``, ``proxy.set_rules(...)``,
    ``await proxy.stats()``."""

    def __init__(self, upstream: str, workdir: Path) -> None:
        self.upstream = upstream
        self.rules_path = Path(workdir) / "hostile-rules.json"
        self.base_url = ""
        self.ws_url = ""
        self.proc: asyncio.subprocess.Process | None = None

    def set_rules(self, *rules: dict) -> None:
        """Replace the rules (atomically: the proxy re-reads the file on every request)."""
        tmp = self.rules_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rules": list(rules)}))
        tmp.replace(self.rules_path)

    async def stats(self) -> dict[int, int]:
        async with (
            aiohttp.ClientSession() as s,
            s.get(self.base_url + STATS_PATH) as resp,
        ):
            return {int(k): v for k, v in (await resp.json()).items()}

    async def __aenter__(self) -> ProxyProcess:
        self.set_rules()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.hostile_proxy",
            "--upstream",
            self.upstream,
            "--port",
            "0",
            "--rules",
            str(self.rules_path),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        for _ in range(2):
            line = (await asyncio.wait_for(self.proc.stdout.readline(), 20)).decode().strip()
            key, _, value = line.partition("=")
            if key not in ("base_url", "ws_url"):
                raise RuntimeError(f"hostile proxy said {line!r}")
            setattr(self, key, value)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:8765")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument(
        "--rules", required=True, type=Path, help="JSON rules file, re-read per request"
    )
    args = ap.parse_args(argv)
    asyncio.run(serve(args.upstream, args.host, args.port, args.rules))


if __name__ == "__main__":
    main()
