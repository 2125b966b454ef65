"""What the supervisor learns, passed on to the books, the notifications and the metrics.

The fleet calls four methods at the points where it already learns something: ``event``
(every event from a user process), ``exited`` (a process exited and the restart policy
decided), ``checked`` (a volume check came in), ``spawn_failed``; the arbiter calls
``started``, ``reloaded`` and ``close``. None of them waits: notifications go to the
``Outbox`` (a queue, a task and a sender process per channel), volume readings to the
``VolumeBook`` (written from a worker thread every few seconds). Nothing here is on the trading path: the user
processes trade on their own, whatever happens to a notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from protocol import messages as m
from protocol.exitcodes import Exit
from supervisor import alerts
from supervisor.books_today import BooksToday
from supervisor.notify import Outbox
from supervisor.restart import Action
from supervisor.states import State
from supervisor.volume_book import VolumeBook, book_path

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter
    from supervisor.hosts import ObserverHost
    from supervisor.restart import Decision
    from supervisor.user_record import UserRecord

log = structlog.get_logger(__name__)

FLUSH_SECONDS = 5.0
F = TypeVar("F", bound=Callable[..., Any])


def never_raises(fn: F) -> F:
    """A hook of the fleet must not fail the fleet's task (that would stop every user):
    a bug here is logged and swallowed."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception:
            log.exception("observer_failed", hook=fn.__name__)
            return None

    return wrapper  # type: ignore[return-value]


class Observer:
    def __init__(self, arb: ObserverHost, today: BooksToday) -> None:
        self.arb = arb
        self.outbox = Outbox(arb.config.notify, monotonic=arb.clock.monotonic)
        self.book = VolumeBook(book_path(arb.config.paths.data_dir))
        self.today = today  # the day's figures every screen shows
        self.mul_points: dict[tuple[str, str], Decimal] = {}  # (user, strategy) -> mulPoint
        self.last_error_at: dict[str, float] = {}  # user -> epoch seconds
        self.needs: dict[str, str] = {}  # user -> the event it last stopped for (dashboard)
        self.reloads = {"ok": 0, "refused": 0}
        self.metrics_at_start = arb.config.metrics
        self.dashboard_at_start = (arb.config.dashboard.listen, arb.config.dashboard.token_file)

    # ------------------------------------------------------------ the supervisor
    def start(self, arb: Arbiter) -> None:
        """Notifications, the volume readings, the daily summary, the metrics endpoint:
        each off the trading path, none able to stop the supervisor (``arb``: for the
        services that read the whole arbiter)."""
        from supervisor.daily import serve_daily_summary
        from supervisor.session_age import serve_session_ages

        self.started()
        arb.tasks.service("books", self.serve_book)
        arb.tasks.service("books today", self.today.serve)
        arb.tasks.service("daily summary", lambda: serve_daily_summary(arb))
        arb.tasks.service("session ages", lambda: serve_session_ages(arb))
        if arb.config.metrics.listen:
            from supervisor.metrics import start_metrics

            arb.tasks.start(start_metrics(arb), "metrics")
        if arb.config.dashboard.listen:
            from supervisor.dashboard import start_dashboard

            arb.tasks.start(start_dashboard(arb), "dashboard")

    @never_raises
    def started(self) -> None:
        self.outbox.post(alerts.service_alert("started"), key="started")

    async def serve_book(self) -> None:
        """Write the volume readings every few seconds (off the loop)."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()

    async def flush(self) -> None:
        try:
            await asyncio.to_thread(self.book.flush)
        except Exception as exc:  # a full disk must not stop the supervisor
            log.warning("volume_book_write_failed", error=f"{type(exc).__name__}: {exc}")

    async def close(self) -> None:
        """At exit: the metrics endpoint and the dashboard closed, the readings written,
        "stopped" sent (the notifications get at most 1 s)."""
        for door in (self.arb.metrics, self.arb.dashboard):
            if door is not None:
                with contextlib.suppress(Exception):
                    await door.close()
        await self.flush()
        self.outbox.post(alerts.service_alert("stopped"), key="stopped")
        with contextlib.suppress(Exception):
            await self.outbox.close()  # at most 1 s, whatever the channels do

    @never_raises
    def reloaded(self, errors: list[str] | None) -> None:
        if errors:
            self.reloads["refused"] += 1
            detail = "\n".join(errors[:20])
            self.outbox.post(alerts.service_alert("reload_refused", detail), key="reload")
            return
        self.reloads["ok"] += 1
        if self.arb.config.notify != self.outbox.settings:  # from the next message on
            self.outbox.reconfigure(self.arb.config.notify)
        if self.arb.config.metrics != self.metrics_at_start:
            log.warning("metrics_change_needs_restart", listen=self.metrics_at_start.listen)
        dash = self.arb.config.dashboard
        if (dash.listen, dash.token_file) != self.dashboard_at_start:
            log.warning("dashboard_change_needs_restart", listen=self.dashboard_at_start[0])

    # ------------------------------------------------------------ the users
    @never_raises
    def event(self, rec: UserRecord, ev: m.Msg) -> None:
        if isinstance(ev, m.TradeDone | m.VolumeChecked | m.Summary):
            self.today.changed(rec.user_id)
        if isinstance(ev, m.VolumeChecked):
            if ev.mul_point:
                self.mul_points[(rec.user_id, ev.strategy_id)] = ev.mul_point
            reported = self._reported(rec.user_id, ev.strategy_id, ev.current, ev.basis)
            if reported is not None:
                self.book.note(rec.user_id, ev.token, reported, ev.at or self.arb.clock.time())
        elif isinstance(ev, m.Summary):  # each strategy's last read, just before the end
            for x in ev.strategies:
                vol = None
                if x.final_volume is not None:
                    vol = self._reported(rec.user_id, x.strategy_id, x.final_volume, x.basis)
                if vol is not None:
                    self.book.note(rec.user_id, x.token, vol, ev.at or self.arb.clock.time())
        elif isinstance(ev, m.ErrorReport):
            self.last_error_at[rec.user_id] = self.arb.clock.time()
            if ev.kind == "bad_setup":
                row = rec.rows.get(ev.strategy_id or "")
                token = row.settings.target_token if row else "?"
                self.outbox.post(
                    alerts.user_alert(
                        "bad_setup",
                        rec.user_id,
                        reason=self.arb.redact(ev.message),
                        strategies=[(ev.strategy_id or "-", token)],
                    )
                )
        elif isinstance(ev, m.TradeDone) and self.outbox.wants("trade"):
            self.outbox.post(
                alerts.trade_alert(
                    rec.user_id, ev.strategy_id, ev.buy_quote, ev.sell_quote, ev.cost
                )
            )

    @never_raises
    def exited(self, rec: UserRecord, code: int | None, decision: Decision | None) -> None:
        self.today.changed(rec.user_id)
        if decision is None or rec.remove_after_exit:
            return
        if decision.action in (Action.RESTART, Action.FATAL):
            self.last_error_at[rec.user_id] = self.arb.clock.time()
        if decision.action == Action.STOPPED and code == Exit.LOW_BALANCE:
            self._user_alert("low_balance", rec)  # stopped for the day: the owner can act
        if decision.action != Action.FATAL:
            return
        summary = rec.summary
        left = [f"{x.quantity} {x.token}" for x in summary.leftovers] if summary else []
        event = alerts.exit_event(code, fatal=True) or "crash_limit"
        self._user_alert(event, rec, leftovers=left)
        if left and event != "leftover":
            self._user_alert("leftover", rec, leftovers=left)

    @never_raises
    def spawn_failed(self, rec: UserRecord) -> None:
        self.last_error_at[rec.user_id] = self.arb.clock.time()
        if rec.state == State.FATAL:
            self._user_alert("crash_limit", rec)

    @never_raises
    def checked(self, recs: list[UserRecord]) -> None:
        """After a volume check: readings for the books; an expired session is FATAL."""
        now = self.arb.clock.time()
        for rec in recs:
            self.today.changed(rec.user_id)
            for sid, row in rec.rows.items():
                if row.current_volume is not None:
                    vol = self._reported(rec.user_id, sid, row.current_volume, row.basis)
                    if vol is not None:
                        self.book.note(rec.user_id, row.settings.target_token, vol, now)
            if rec.state == State.FATAL:  # the check's one way to FATAL: session expired
                self.last_error_at[rec.user_id] = now
                self._user_alert("session_expired", rec)

    def _user_alert(self, event: str, rec: UserRecord, leftovers: Sequence[str] = ()) -> None:
        self.needs[rec.user_id] = event
        self.outbox.post(
            alerts.user_alert(
                event,
                rec.user_id,
                reason=rec.sm.reason,
                strategies=_concerned(rec),
                leftovers=leftovers,
            )
        )

    # ------------------------------------------------------------ points
    def _reported(self, uid: str, sid: str, volume: Decimal, basis: str) -> Decimal | None:
        """A volume in the exchange's reported units (multiplied by mulPoint)."""
        if basis != "traded":
            return volume
        mul = self.mul_points.get((uid, sid))
        return None if mul is None else volume * mul


def _concerned(rec: UserRecord) -> list[tuple[str, str]]:
    """(strategy, token) of what the user was still doing: the strategies its summary
    lists as not reached, else its rows not reached."""
    s = rec.summary
    if s is not None and s.strategies:
        out = [(x.strategy_id, x.token) for x in s.strategies if not x.reached]
        if out:
            return out
    return [
        (sid, row.settings.target_token)
        for sid, row in rec.rows.items()
        if not (row.reached or row.skipped)
    ] or [(sid, row.settings.target_token) for sid, row in rec.rows.items()]
