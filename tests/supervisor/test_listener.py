"""A bounded door (supervisor/listener.py) against real TCP clients: its limits as a
client meets them."""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
from asyncio.subprocess import PIPE

import structlog.testing
from aiohttp import web

from supervisor.listener import Door, DoorLimits, new_app

LIMITS = DoorLimits(max_connections=2, idle_seconds=0.5, body_bytes=1024, request_seconds=1)


async def door(limits: DoorLimits = LIMITS) -> Door:
    app = new_app(limits)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="late")

    app.router.add_get("/", hello)
    app.router.add_post("/", hello)
    app.router.add_get("/slow", slow)
    d = Door(app, "127.0.0.1", 0, name="test", reserve=0, limits=limits)
    await d.start()
    return d


async def ask(port: int, request: bytes, within: float = 5) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        async with asyncio.timeout(within):
            return await reader.read()
    finally:
        writer.close()


GET = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def test_a_connection_beyond_the_limit_waits_until_an_idle_one_is_closed():
    d = await door()
    port = d.addresses[0][1]
    try:
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        t0 = time.monotonic()
        answer = await ask(port, GET)
        waited = time.monotonic() - t0
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"hello")
        assert 0.3 < waited < 3, waited  # served once the idle ones timed out
        for reader, _ in idle:  # the server closed them: EOF without a byte
            assert await asyncio.wait_for(reader.read(), 2) == b""
        assert d.open_connections <= 1
    finally:
        await d.close()


async def test_a_slow_header_is_cut_off_and_a_large_body_refused_unread():
    d = await door()
    port = d.addresses[0][1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
        t0 = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 3) == b""
        assert time.monotonic() - t0 < 2
        writer.close()
        big = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
        assert (await ask(port, big)).split()[1] == b"413"
        slow = await ask(port, b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert slow.split()[1] == b"503"
    finally:
        await d.close()


async def test_a_port_in_use_is_an_oserror_and_nothing_stays_open():
    d = await door()
    port = d.addresses[0][1]
    try:
        other = Door(new_app(LIMITS), "127.0.0.1", port, name="twin", reserve=0)
        try:
            await other.start()
        except OSError:
            pass
        else:
            raise AssertionError("a second door bound the same port")
        assert other.addresses == []
    finally:
        await d.close()


CLIENTS = """
import socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(60)]
print("connected", flush=True)
sys.stdin.read()
"""


async def test_out_of_descriptors_the_door_backs_off_instead_of_spinning():
    d = await door(DoorLimits(max_connections=1000, idle_seconds=30))
    port = d.addresses[0][1]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    clients = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENTS, str(port), stdin=PIPE, stdout=PIPE
    )
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 10, hard))
        with structlog.testing.capture_logs() as logs:
            assert await asyncio.wait_for(clients.stdout.readline(), 10) == b"connected\n"
            cpu0 = time.process_time()
            await asyncio.sleep(1.5)  # a measurement window (nothing waits on it)
            cpu = time.process_time() - cpu0
        assert cpu < 0.5, cpu  # spinning on accept would take the whole 1.5 s
        warned = [e for e in logs if e["event"] == "door_out_of_descriptors"]
        assert len(warned) == 1 and warned[0]["error"] == "EMFILE", logs
        assert 5 <= d.open_connections <= 12
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        clients.stdin.close()
        await clients.wait()
        await d.close()
