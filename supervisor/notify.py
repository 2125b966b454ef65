"""Delivering notifications with Apprise, each channel on its own.

``Outbox.post`` is what the supervisor's loop calls: it filters by ``notify.events``,
drops a repeat of the same (event, user) within the hour, redacts title and body, and
hands the message to every channel without ever waiting. Each channel
(``supervisor.notify_channel.Channel``, one per URL) has its own bounded queue (the oldest
message is dropped, and counted, when it is full), its own task and its own sender process
(``supervisor.notify_sender``, where Apprise runs: the supervisor never imports it), and
every attempt has one deadline, ``notify.timeout_seconds``, for connecting, sending and
reading together. A channel that drips, hangs or fails therefore delays only itself; it
is logged at warning once an hour. ``close`` waits at most ``within`` seconds in all (1 s
at exit) for what is queued, then stops every channel (see ``Channel.close``).

Log lines about sending name a channel by ``channel_label`` (position and scheme), never
by its URL; the URLs' secret parts are masked everywhere anyway (``config.service_sections``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable

import structlog

from config.logsetup import redact
from config.settings import NotifySettings
from supervisor.notify_channel import Channel, Message, Sent

__all__ = ["Message", "Outbox", "Sent", "hostname"]

log = structlog.get_logger(__name__)

QUEUE_SIZE = 100  # per channel
REPEAT_AFTER = 3600.0  # seconds before the same (event, user) is sent again
CLOSE_WITHIN = 1.0  # seconds the exit waits, in all, for notifications in flight


def hostname() -> str:
    try:
        return socket.gethostname()
    except OSError:
        return "?"


class Outbox:
    """The supervisor's notifications: ``post`` from the loop, one ``Channel`` per URL."""

    def __init__(
        self,
        settings: NotifySettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        repeat_after: float = REPEAT_AFTER,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.settings = settings
        self.monotonic = monotonic
        self.repeat_after = repeat_after
        self.queue_size = queue_size
        self._last: dict[tuple[str, str], float] = {}
        self.channels: list[Channel] = []
        self._closed: list[Channel] = []  # replaced by a reload: their drops still count
        self._closing: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0
        self.reconfigure(settings)

    @property
    def dropped(self) -> int:
        return sum(c.dropped for c in (*self._closed, *self.channels))

    @property
    def enabled(self) -> bool:
        return bool(self.settings.urls)

    def reconfigure(self, settings: NotifySettings) -> None:
        """One channel per URL (its task and sender process start with its first
        message). New settings (a reload): a URL kept keeps its channel and queue, a URL
        gone loses its channel (closed at once, in the background), a new URL gets one."""
        self.settings = settings
        old = {c.url: c for c in self.channels}
        self.channels = []
        for i, url in enumerate(settings.urls):
            chan = old.pop(url, None)
            if chan is None:
                chan = Channel(
                    i,
                    url,
                    timeout=settings.timeout_seconds,
                    retries=settings.retries,
                    queue_size=self.queue_size,
                    on_sent=self._counted,
                )
            chan.timeout, chan.retries = settings.timeout_seconds, settings.retries
            self.channels.append(chan)
        for gone in old.values():  # only on a reload, from the loop
            self._closed.append(gone)
            task = asyncio.get_running_loop().create_task(gone.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def start(self) -> None:
        """Nothing to start (kept for older callers): a channel's task and sender process
        start with its first message."""

    def wants(self, event: str) -> bool:
        return self.enabled and event in self.settings.events

    def post(self, msg: Message, *, key: str | None = None) -> bool:
        """Queue ``msg`` on every channel unless its event is not wanted or the same
        (event, ``key`` or user) went out within the hour. Never blocks; True when queued."""
        if not self.wants(msg.event):
            return False
        k = (msg.event, key if key is not None else (msg.user_id or ""))
        now = self.monotonic()
        last = self._last.get(k)
        if last is not None and now - last < self.repeat_after:
            log.info("notify_repeat_skipped", notify_event=msg.event, user_id=msg.user_id)
            return False
        clean = Message(msg.event, redact(msg.title), redact(msg.body), msg.user_id)
        for chan in self.channels:
            chan.put(clean)
        self._last[k] = now
        return True

    async def close(self, within: float = CLOSE_WITHIN) -> None:
        """Send what is queued for at most ``within`` seconds in all, then stop every
        channel: an attempt still under way is killed; a working channel's sender takes
        its last messages over and sends them on its own (``Channel.close``)."""
        chans = self.channels
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await asyncio.gather(*(c.drained() for c in chans))
        await asyncio.gather(
            *(c.close(hand_over=True) for c in chans), *(c.close() for c in self._closed)
        )

    def _counted(self, msg: Message, res: Sent) -> None:
        if res.ok:
            self.sent += 1
        else:
            self.failed += 1
