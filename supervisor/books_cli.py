"""`alphavol history` (the books of the last 15 UTC days) and `alphavol notify test`.

Both print through ``config.output`` (one redaction). ``history`` reads the journals and
the supervisor's volume readings (``supervisor.ledger``) and, unless ``--offline``, asks
the exchange for today's volumes and its own points (``user-score``), one user at a time
concurrently; a user it cannot ask is shown from the files alone, with a note.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import click

from config.cli import config_option, load_or_exit
from config.output import EXIT_FAILED, EXIT_OK, fail, say, say_json, show
from exchange.clock import SYSTEM_CLOCK
from exchange.points import SCORE_WINDOW_DAYS

if TYPE_CHECKING:
    from config.loader import AppConfig
    from exchange.auth import Credentials
    from supervisor import ledger


@click.command("history")
@config_option
@click.option(
    "--days",
    default=SCORE_WINDOW_DAYS,
    show_default=True,
    type=click.IntRange(1, 366),
    help="UTC days back from today (the exchange sums points over 15).",
)
@click.option("--user", "user_id", help="Only this user.")
@click.option("--json", "as_json", is_flag=True, help="A list of objects, one per user/day/token.")
@click.option("--offline", is_flag=True, help="Do not ask the exchange (journals and readings).")
def history(config_path: str, days: int, user_id: str | None, as_json: bool, offline: bool) -> None:
    """Per user, UTC day and token: round trips, USDT bought, volume credited, points,
    cost and cost per point, with the exchange's own points beside ours."""
    from supervisor import ledger

    config = _load(config_path)
    data_dir = config.paths.data_dir
    today = SYSTEM_CLOCK.utc_day()
    totals = None
    if config.store is not None:  # a pool: the shared books, whichever nodes traded
        from supervisor.pool.books import day_totals_from_store

        totals = day_totals_from_store(config.store, ledger.window_start(today, days))
    users = ledger.journal_users(data_dir) if totals is None else sorted(totals)
    if user_id is not None:
        if user_id not in users:
            fail(f"user {user_id} has no journal in {data_dir}/journals", EXIT_FAILED)
        users = [user_id]
    view = None if offline else _ask(config, users)
    rows = ledger.build(data_dir, today=today, days=days, users=users, exchange=view, totals=totals)
    for note in view.notes if view else []:
        say(f"alphavol: note: {note}", err=True)
    if as_json:
        say_json([r.as_json() for r in rows])
        return
    if not rows:
        say(f"no round trips in the last {days} UTC days")
        return
    from supervisor.history_view import history_view

    show(history_view(rows, days=days))


def _load(config_path: str) -> AppConfig:
    """The config, and logging to stderr as configured (stdout is the answer)."""
    from config.logsetup import configure_logging

    config = load_or_exit(config_path)
    configure_logging(config.logging.level, config.logging.format, stream=sys.stderr)
    return config


def _ask(config: AppConfig, users: list[str]) -> ledger.ExchangeView:
    from config.cli import open_store
    from config.output import CliError
    from supervisor import ledger

    try:
        store = open_store(config)
    except CliError as exc:  # no key, no store: the files alone
        view = ledger.ExchangeView()
        view.notes.append(f"the exchange was not asked: {exc.format_message()}")
        return view

    def routed(uid: str) -> Credentials:  # the user's own route (its proxy, if any)
        return store.get(uid).routed(config.proxy_for(uid))

    return asyncio.run(ledger.ask_exchange(users, routed, config.exchange))


@click.group("notify")
def notify() -> None:
    """Notifications (Apprise URLs in the config's notify section)."""


@notify.command("test")
@config_option
def notify_test(config_path: str) -> None:
    """Send a test message to every notify URL; say which failed (exit 1 if any).
    Every channel is tried at once, each within notify.timeout_seconds."""
    from supervisor.notify import Message, hostname
    from supervisor.notify_channel import Channel, Sent

    config = _load(config_path)
    settings = config.notify
    if not settings.urls:
        fail("no notify.urls in the config: nothing to test")
    msg = Message(
        "service",
        "alphavol: test message",
        f"A test message from alphavol on {hostname()}: this channel works.",
    )

    async def each(chan: Channel) -> Sent:
        try:
            return await chan.deliver(msg, attempts=1)
        finally:
            await chan.close()

    async def every() -> list[Sent]:
        chans = [
            Channel(i, url, timeout=settings.timeout_seconds, retries=1)
            for i, url in enumerate(settings.urls)
        ]
        return await asyncio.gather(*(each(c) for c in chans))

    results = asyncio.run(every())
    for res in results:
        say(f"{res.label}: " + ("sent" if res.ok else f"FAILED ({res.error})"))
    sys.exit(EXIT_FAILED if any(not r.ok for r in results) else EXIT_OK)
