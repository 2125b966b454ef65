"""Delivering notifications with Apprise, off the event loop.

``Outbox.post`` is what the supervisor's loop calls: it filters by ``notify.events``,
drops a repeat of the same (event, user) within the hour, redacts title and body, and
puts the message on a bounded queue without ever waiting (a full queue drops the message
with a warning). One worker thread takes messages off the queue and sends each to every
channel (one ``apprise.Apprise`` per URL, so a failing channel is known by name), with
``notify.retries`` attempts per channel and backoff between them, and each attempt
bounded by ``notify.timeout_seconds``. A channel that hangs or answers 500 therefore
holds up only this thread, never an order, a heartbeat or a control reply.

Apprise is imported in that thread, and only when ``notify.urls`` is set (it loads every
plugin it has: tens of MB the supervisor need not carry otherwise). Log lines about
sending name a channel by ``channel_label`` (position and scheme), never by its URL;
the URLs' secret parts are masked everywhere anyway (``config.service_sections``).
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from config.logsetup import redact
from config.service_sections import apprise_plugin, channel_label
from config.settings import NotifySettings

log = structlog.get_logger(__name__)

QUEUE_SIZE = 100
REPEAT_AFTER = 3600.0  # seconds before the same (event, user) is sent again
BACKOFF = (1.0, 2.0, 4.0, 8.0)


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


class _Stop:
    """The worker's cue to finish (after what is queued, by ``deadline``)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline


def channels(urls: tuple[str, ...], timeout: float) -> list[tuple[str, Any]]:
    """(label, Apprise) per URL; a URL Apprise does not understand gets None. Imports
    Apprise (call from the worker thread, or from a CLI command)."""
    import apprise

    # Sends run inline in the calling thread: with async_mode or a service_timeout
    # (Apprise 2) Apprise sends from its own pool of non-daemon threads, which the
    # interpreter waits for at exit (a hanging channel would hold the exit up). Each
    # attempt is bounded by the socket timeouts set below instead.
    try:
        asset = apprise.AppriseAsset(async_mode=False, service_timeout=0)
    except TypeError:  # Apprise 1.x has no service_timeout (and always sends inline)
        asset = apprise.AppriseAsset(async_mode=False)
    out: list[tuple[str, Any]] = []
    for i, url in enumerate(urls):
        ap = apprise.Apprise(asset=asset)
        plugin = apprise_plugin(url, asset)
        if plugin:
            for attr in ("socket_connect_timeout", "socket_read_timeout"):
                if hasattr(plugin, attr):
                    setattr(plugin, attr, timeout)
            ap.add(plugin)
        out.append((channel_label(i, url), ap if plugin else None))
    return out


def send_one(ap: Any, label: str, msg: Message, attempts: int, sleep=time.sleep) -> Sent:
    """Up to ``attempts`` tries, with backoff between them; never raises."""
    if ap is None:
        return Sent(label, False, "Apprise does not understand this URL")
    error = "failed"
    for attempt in range(1, attempts + 1):
        try:
            if ap.notify(title=msg.title, body=msg.body):
                return Sent(label, True)
            error = "the channel refused or did not answer"
        except Exception as exc:
            error = redact(f"{type(exc).__name__}: {exc}")
        if attempt < attempts:
            sleep(BACKOFF[min(attempt - 1, len(BACKOFF) - 1)])
    return Sent(label, False, error)


def hostname() -> str:
    try:
        return socket.gethostname()
    except OSError:
        return "?"


class Outbox:
    """The supervisor's notifications: ``post`` from the loop, sending in a thread."""

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
        self._queue: queue.Queue[Message | _Stop] = queue.Queue(maxsize=queue_size)
        self._last: dict[tuple[str, str], float] = {}
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    @property
    def enabled(self) -> bool:
        return bool(self.settings.urls)

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._work, name="notify", daemon=True)
            self._thread.start()

    def wants(self, event: str) -> bool:
        return self.enabled and event in self.settings.events

    def post(self, msg: Message, *, key: str | None = None) -> bool:
        """Queue ``msg`` unless its event is not wanted or the same (event, ``key`` or
        user) went out within the hour. Never blocks; True when queued."""
        if not self.wants(msg.event):
            return False
        k = (msg.event, key if key is not None else (msg.user_id or ""))
        now = self.monotonic()
        last = self._last.get(k)
        if last is not None and now - last < self.repeat_after:
            log.info("notify_repeat_skipped", notify_event=msg.event, user_id=msg.user_id)
            return False
        clean = Message(msg.event, redact(msg.title), redact(msg.body), msg.user_id)
        try:
            self._queue.put_nowait(clean)
        except queue.Full:
            self.dropped += 1
            log.warning("notify_dropped", notify_event=msg.event, reason="queue full")
            return False
        self._last[k] = now
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued for at most ``timeout`` seconds, then let the thread go."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(_Stop(deadline), timeout=max(0.0, timeout))
        except queue.Full:
            return
        self._thread.join(timeout)
        self._thread = None

    def _channels(self) -> list[tuple[str, Any]]:
        try:
            chans = channels(self.settings.urls, self.settings.timeout_seconds)
        except Exception as exc:  # Apprise missing or broken: say so, send nothing
            log.error("notify_unavailable", error=redact(f"{type(exc).__name__}: {exc}"))
            return []
        for label, ap in chans:
            if ap is None:
                log.error("notify_url_not_understood", channel=label)
        return chans

    def _work(self) -> None:
        built = self.settings
        chans = self._channels()
        deadline: float | None = None
        while True:
            try:
                item = self._queue.get(timeout=None if deadline is None else 0.05)
            except queue.Empty:
                return  # stopping, and nothing left
            if isinstance(item, _Stop):
                deadline = item.deadline
                continue
            if deadline is not None and time.monotonic() > deadline:
                return
            if self.settings is not built:  # a reload changed them
                built = self.settings
                chans = self._channels()
            for label, ap in chans:
                res = send_one(ap, label, item, self.settings.retries)
                if res.ok:
                    self.sent += 1
                    log.info("notify_sent", notify_event=item.event, channel=label)
                else:
                    self.failed += 1
                    log.warning(
                        "notify_failed",
                        notify_event=item.event,
                        channel=label,
                        attempts=self.settings.retries,
                        error=res.error,
                    )
