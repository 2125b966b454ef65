"""A TCP forwarder that can stop forwarding (issue 22: a node cut from PostgreSQL).

``async with TcpCut(host, port) as cut:`` listens on a free port of 127.0.0.1 and
forwards every connection to ``host:port``. ``cut.stop()`` stops forwarding in both
directions without closing anything (a partition: the peers see silence, not a reset);
new connections are accepted and left waiting. ``cut.resume()`` forwards again.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpCut:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.open = asyncio.Event()
        self.open.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> TcpCut:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in self._writers:
            w.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def stop(self) -> None:
        self.open.clear()

    def resume(self) -> None:
        self.open.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        await self.open.wait()
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.append(up_w)
        for src, dst in ((reader, up_w), (up_r, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                await self.open.wait()
                data = await src.read(65536)
                if not data:
                    break
                await self.open.wait()  # data read before a cut is held, not delivered
                dst.write(data)
                await dst.drain()
        dst.close()
