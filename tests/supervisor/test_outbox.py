"""The notification outbox in this process, against a real local receiver and real
Apprise: posting never waits, repeats within the hour are dropped, secrets are masked."""

from __future__ import annotations

import time

import pytest

from config.logsetup import add_secrets
from config.settings import NotifySettings
from supervisor import alerts
from supervisor.notify import Message, Outbox
from tests.notify_receiver import Receiver


@pytest.mark.serial  # a 50 ms bound: run alone, not beside three other workers
async def test_posting_never_waits_on_a_hanging_channel_and_a_full_queue_drops():
    async with Receiver(mode="hang") as rx:
        box = Outbox(NotifySettings(urls=(rx.url(),), timeout_seconds=30, retries=1), queue_size=5)
        t0 = time.perf_counter()
        queued = [box.post(Message("service", "t", f"body {i}"), key=str(i)) for i in range(50)]
        took = time.perf_counter() - t0
        assert took < 0.05, took
        assert queued.count(True) == 50  # each queued; the oldest fall off the channel's queue
        assert box.dropped == 45
        await rx.wait(lambda r: r.posts, 10, "the first message (which then hangs)")
        t0 = time.monotonic()
        await box.close(0.2)  # gives up on the stuck channel
        assert time.monotonic() - t0 < 1.5


async def test_the_same_event_for_the_same_user_goes_once_an_hour_and_secrets_are_masked():
    add_secrets(["outbox-S3CRET-cookie-value"])
    now = [1000.0]
    async with Receiver() as rx:
        box = Outbox(
            NotifySettings(urls=(rx.url(),), events=("session_expired", "risk_challenge")),
            monotonic=lambda: now[0],
        )

        def alert(event: str, user: str):
            reason = "the exchange said: cookie outbox-S3CRET-cookie-value is dead"
            return box.post(alerts.user_alert(event, user, reason=reason))

        assert alert("session_expired", "1")
        assert not alert("session_expired", "1")  # the same, within the hour
        assert alert("session_expired", "2") and alert("risk_challenge", "1")
        assert not alert("leftover", "1")  # not in notify.events
        now[0] += 3601
        assert alert("session_expired", "1")  # an hour later it may be said again
        await rx.wait(lambda r: len(r.posts) == 4, 10, "four messages")
        await box.close(2)
    bodies = "\n".join(p["body"] for p in rx.posts)
    assert "outbox-S3CRET-cookie-value" not in bodies and "***" in bodies
    assert box.sent == 4 and box.failed == 0
