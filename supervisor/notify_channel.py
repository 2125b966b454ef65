"""One notification channel (one ``notify.urls`` entry): its own queue, its own task, its
own sender process, and a deadline on every attempt.

``Channel.put`` never waits: a full queue drops its oldest message (counted in
``dropped``). The channel's task sends one message at a time, ``retries`` attempts with
backoff (1, 2, 4 s); an attempt is a line to the channel's sender process
(``supervisor.notify_sender``) and its answer, and must be done within ``timeout``
seconds, connecting, sending and reading together. An attempt past its deadline kills the
sender (the next attempt starts a fresh one), so a channel that drips, hangs or cannot
resolve its host costs only itself: never another channel, the supervisor's loop or its
exit (``close``). A failing channel is logged at warning once an hour, at info otherwise.
``deliver`` is what ``alphavol notify test`` uses: one message, now, bounded the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from config.logsetup import redact
from config.service_sections import channel_label
from supervisor.forkserver import SCRUBBED_ENV  # the sender needs none of these secrets either

log = structlog.get_logger(__name__)

BACKOFF = (1.0, 2.0, 4.0, 8.0)
STARTUP_SECONDS = 30.0  # a sender process loading Apprise (about 1 s; more on a busy host)
HAND_OVER = 10  # messages a sender may take over at exit
WARN_EVERY = 3600.0  # a failing channel: one warning per hour


@dataclass(frozen=True)
class Message:
    event: str
    title: str
    body: str
    user_id: str | None = None


@dataclass(frozen=True)
class Sent:
    """What became of one message on one channel."""

    label: str
    ok: bool
    error: str | None = None


class _Sender:
    """The channel's sender process (``supervisor.notify_sender``): ``spawn`` starts it
    (and hands it the URL), ``ready`` waits until it has loaded Apprise. A plain ``Popen``
    with its pipes on the loop: asyncio's own subprocess transport would kill a sender
    that was handed messages over at exit as soon as it is garbage-collected."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.is_ready = False
        self._out: asyncio.WriteTransport | None = None
        self._reading: asyncio.ReadTransport | None = None
        self._in = asyncio.StreamReader()

    @classmethod
    async def spawn(cls, url: str, socket_seconds: float) -> _Sender:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        proc = subprocess.Popen(  # noqa: ASYNC220 -- on purpose (see the class); vfork: quick
            [sys.executable, "-m", "supervisor.notify_sender"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl+C at the terminal is the supervisor's to handle
        )
        sender = cls(proc)
        try:
            loop = asyncio.get_running_loop()
            sender._out, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, proc.stdin)
            sender._reading, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(sender._in), proc.stdout
            )
        except BaseException:
            await sender.kill()
            raise
        sender.write({"url": url, "timeout": socket_seconds, "startup": STARTUP_SECONDS})
        return sender

    async def ready(self) -> str | None:
        """None once Apprise is loaded and understands the URL, else what is wrong."""
        async with asyncio.timeout(STARTUP_SECONDS):
            reply = await self.answer()
        self.is_ready = bool(reply.get("ready"))
        return None if self.is_ready else str(reply.get("error"))

    def write(self, doc: dict[str, Any]) -> None:
        assert self._out is not None
        self._out.write(json.dumps(doc).encode() + b"\n")

    async def answer(self) -> dict[str, Any]:
        line = await self._in.readline()
        if not line:
            raise ConnectionError("the sender process ended")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def hand_over(self, msgs: list[Message]) -> None:
        """At exit: the sender sends ``msgs`` on its own (each attempt bounded by its own
        alarm) and ends; nobody waits for it."""
        for msg in msgs:
            self.write({"title": msg.title, "body": msg.body})
        self._close_pipes()

    async def kill(self) -> None:
        self._close_pipes()
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(self.proc.wait, 1.0)

    def _close_pipes(self) -> None:
        if self._out is not None:
            self._out.close()  # what was written is flushed first
        if self._reading is not None:
            self._reading.close()


class Channel:
    def __init__(
        self,
        index: int,
        url: str,
        *,
        timeout: float,
        retries: int,
        queue_size: int = 100,
        on_sent: Callable[[Message, Sent], None] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.url = url
        self.label = channel_label(index, url)
        self.timeout, self.retries = timeout, retries
        self.queue: deque[Message] = deque()
        self.queue_size = queue_size
        self.dropped = 0
        self.on_sent = on_sent
        self.sleep = sleep
        self._sender: _Sender | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._warned_at: float | None = None
        self._unsent: Message | None = None  # taken off the queue, not yet with the sender
        self._broken: str | None = None  # Apprise cannot send to this URL at all
        self._closed = False

    # ------------------------------------------------------------ the supervisor's side
    def put(self, msg: Message) -> None:
        """Queue ``msg`` (never waits); a full queue loses its oldest message."""
        if self._closed:
            return
        if len(self.queue) >= self.queue_size:
            old = self.queue.popleft()
            self.dropped += 1
            log.info("notify_dropped", channel=self.label, notify_event=old.event)
        self.queue.append(msg)
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"notify {self.label}"
            )

    async def drained(self) -> None:
        """Until the queue is empty and no attempt is under way."""
        await self._idle.wait()

    async def close(self, *, hand_over: bool = False) -> None:
        """Stop now. An attempt under way is killed and what is queued dropped, unless
        ``hand_over`` and the channel worked last time: then its sender process is given
        the last ``HAND_OVER`` messages not yet written to it, sends them on its own
        (each attempt bounded by its own alarm) and ends; the supervisor does not wait (a
        sender still loading Apprise at a quick exit would otherwise lose them)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        left = [*([self._unsent] if self._unsent else []), *self.queue][-HAND_OVER:]
        self.queue.clear()
        sender = self._sender
        if hand_over and left and sender is not None and self._warned_at is None:
            self._sender = None
            with contextlib.suppress(Exception):
                sender.hand_over(left)
                return
        await self._stop_sender()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.queue:
                msg = self.queue.popleft()
                try:
                    res = await self.deliver(msg, self.retries)
                except Exception as exc:  # a bug here must not end the channel for good
                    log.error("notify_channel_failed", channel=self.label, exc_info=exc)
                    res = Sent(self.label, False, type(exc).__name__)
                self._report(msg, res)
            self._idle.set()

    def _report(self, msg: Message, res: Sent) -> None:
        if self.on_sent is not None:
            self.on_sent(msg, res)
        if res.ok:
            if self._warned_at is not None:
                log.info("notify_channel_back", channel=self.label)
            self._warned_at = None
            log.info("notify_sent", notify_event=msg.event, channel=self.label)
            return
        now = time.monotonic()
        warn = self._warned_at is None or now - self._warned_at >= WARN_EVERY
        if warn:
            self._warned_at = now
        (log.warning if warn else log.info)(
            "notify_failed",
            notify_event=msg.event,
            channel=self.label,
            attempts=self.retries,
            error=res.error,
            **({"next_warning": "in an hour, unless it works again"} if warn else {}),
        )

    # ------------------------------------------------------------ sending
    async def deliver(self, msg: Message, attempts: int) -> Sent:
        """Up to ``attempts`` tries with backoff, each within ``timeout``; never raises."""
        error = "failed"
        try:
            for attempt in range(1, attempts + 1):
                ok, error = await self._attempt(msg)
                if ok:
                    return Sent(self.label, True)
                if attempt < attempts and self._broken is None:
                    self._unsent = msg  # between attempts it is ours again
                    await self.sleep(BACKOFF[min(attempt - 1, len(BACKOFF) - 1)])
        finally:
            self._unsent = None
        return Sent(self.label, False, redact(error))

    async def _attempt(self, msg: Message) -> tuple[bool, str]:
        if self._broken is not None:  # no process started again for it
            return False, self._broken
        self._unsent = msg  # until it is written to the sender (kept for a hand-over)
        try:
            if self._sender is None:
                self._sender = await _Sender.spawn(self.url, self.timeout)
            if not self._sender.is_ready:
                try:
                    self._broken = await self._sender.ready()
                except TimeoutError:
                    raise ConnectionError(f"not started within {STARTUP_SECONDS:g} s") from None
                if self._broken is not None:
                    self._unsent = None
                    await self._stop_sender()
                    return False, self._broken
            async with asyncio.timeout(self.timeout):
                self._sender.write({"title": msg.title, "body": msg.body})
                self._unsent = None
                reply = await self._sender.answer()
        except TimeoutError:
            self._unsent = None
            await self._stop_sender()
            return False, f"no answer within {self.timeout:g} s (connect, send and read)"
        except (OSError, ConnectionError, ValueError) as exc:
            self._unsent = None
            await self._stop_sender()
            return False, f"the sender process failed: {exc}"
        return bool(reply.get("ok")), str(reply.get("error"))

    async def _stop_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            await sender.kill()
