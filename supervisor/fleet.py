"""Every user of the supervisor, and what the arbiter does to them.

``Fleet`` holds the ``UserRecord`` of each user (in config order) and turns the arbiter's
decisions into calls on them: start the users that are due (``schedule``), handle a
process's exit (``on_exit``), fold in its events (``serve_events``), stop and start users
on request, apply a volume check's results and a reload's plan. Every transition is a
method of the record (``supervisor.user_record``); the fleet only chooses which user and
sends what the record returns. It never decides when to stop the supervisor: that is the
arbiter's (``supervisor.arbiter``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from protocol import messages as m
from protocol.addresses import events_endpoint
from protocol.codec import ProtocolError, decode_event
from supervisor.reload_plan import ReloadPlan
from supervisor.spawn import Child
from supervisor.states import ALIVE, TERMINAL, State
from supervisor.user_record import UserRecord
from supervisor.volumes import check_volumes

if TYPE_CHECKING:
    from config.settings import EffectiveSettings
    from supervisor.hosts import FleetHost
    from supervisor.states import Phase

log = structlog.get_logger(__name__)
FAIR_SHARE = 16  # events handled before the loop lets its other tasks run


class Fleet:
    def __init__(self, arbiter: FleetHost) -> None:
        self.arb = arbiter
        self.records: dict[str, UserRecord] = {}
        self.summary_wait = 0.5  # seconds an exited child's last frames may lag its exit

    def at(self) -> float:
        return self.arb.clock.time()

    def add(self, user_id: str, settings: list[EffectiveSettings]) -> UserRecord:
        rec = self.records[user_id] = UserRecord.create(user_id, settings, self.arb.policy)
        return rec

    def settings_now(self) -> dict[str, list[EffectiveSettings]]:
        return {uid: [r.settings for r in rec.rows.values()] for uid, rec in self.records.items()}

    # ------------------------------------------------------------ queries
    def all_finished(self) -> bool:
        return all(r.state in TERMINAL for r in self.records.values())

    def alive(self) -> int:
        return sum(1 for r in self.records.values() if r.state in ALIVE)

    def children(self) -> list[UserRecord]:
        return [r for r in self.records.values() if r.child is not None]

    def next_due(self, mono: float) -> float | None:
        dues = [r.next_start_at - mono for r in self.records.values() if r.state == State.BACKOFF]
        return max(0.0, min(dues)) if dues else None

    def stop_grace(self) -> float:
        """The longest ``stop_grace_seconds`` of the strategies still to run."""
        return max(
            (s.stop_grace_seconds for r in self.records.values() for s in r.settings), default=0.0
        )

    def all_reached(self) -> bool:
        """Every strategy of every user reached its target, was skipped or was stopped by
        the operator (``alphavol stop``: asked for, not a failure), nobody ended FATAL and
        nothing is left over: ``run --once`` exits 0."""
        recs = self.records.values()
        return (
            all(
                row.reached or row.skipped or row.stopped or sid in rec.stop_requested
                for rec in recs
                for sid, row in rec.rows.items()
            )
            and not any(r.state == State.FATAL for r in recs)
            and not any(r.summary and r.summary.leftovers for r in recs)
        )

    # ------------------------------------------------------------ volume check
    async def check(self, recs: list[UserRecord]) -> None:
        """Ask the exchange for these users' volumes; skip the ones at target (seed 000).
        One odd result marks that user's row with the error; the others are not touched."""
        arb = self.arb
        arb.faults.hit("volumes")
        recs = [r for r in recs if r.state == State.PENDING]
        if not recs:
            return
        pairs = [row.settings for r in recs for row in r.rows.values()]
        try:
            results = await check_volumes(
                pairs,
                arb.credentials_for,
                arb.config.exchange,
                concurrency=max(4, arb.config.max_concurrent_users),
            )
        except Exception:  # the users then check for themselves when they start
            log.error("volume_check_failed", exc_info=True)
            results = []
        for res in results:
            rec = self.records.get(res.user_id)
            if rec is None:
                continue
            try:
                rec.volume_result(res, at=self.at(), redact=arb.redact)
            except Exception as exc:
                text = arb.redact(f"volume check: {type(exc).__name__}: {exc}")
                log.error(
                    "volume_result_rejected",
                    user_id=res.user_id,
                    strategy_id=res.strategy_id,
                    error=text,
                )
                rec.row_error(res.strategy_id, text)
        for rec in recs:
            if self.records.get(rec.user_id) is rec and rec.check_finished(at=self.at()):
                arb.say(f"user {rec.user_id}: already at target, skipped")
        arb.observer.checked(recs)
        arb.wake()

    # ------------------------------------------------------------ spawning
    async def schedule(self, limit: int, interrupted: Callable[[], bool]) -> None:
        """Start queued users while slots are free, and users whose backoff is over.

        One fork at a time, awaited (``Spawner.start`` forks in a worker thread), so Pings,
        events and control requests keep flowing while hundreds of users start. Returns
        early when ``interrupted()``: the arbiter has a command to act on first."""
        alive = self.alive()
        for rec in list(self.records.values()):
            if interrupted() or alive >= limit:
                return
            if self.records.get(rec.user_id) is rec and rec.due(self.arb.mono()):
                if self.arb.pool is not None and not self.arb.pool.may_start(rec.user_id):
                    continue  # no lease valid beyond the next renewal (issue 22)
                await self.spawn(rec)
                alive = self.alive()  # others may have exited or stopped meanwhile

    async def spawn(self, rec: UserRecord) -> None:
        arb = self.arb
        rec.spawning(at=self.at())
        try:
            child = await arb.spawner.start(
                self._spec(rec),
                on_exit=functools.partial(self.on_exit, rec),
                now=arb.mono(),
            )
        except Exception as exc:  # that user cannot start (fork, journal dir): FATAL
            reason = arb.redact(f"could not start: {type(exc).__name__}: {exc}")
            log.error("spawn_failed", user_id=rec.user_id, exc_info=True)
            rec.spawn_failed(reason, at=self.at())
            arb.observer.spawn_failed(rec)
            if rec.remove_after_exit:
                self.records.pop(rec.user_id, None)
            arb.wake()
            return
        rec.spawned(child, mono=arb.mono())

    def _spec(self, rec: UserRecord) -> Any:
        from userproc.spec import UserSpec

        paths = self.arb.config.paths
        journal = paths.journal_path(rec.user_id)
        journal.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return UserSpec(
            user_id=rec.user_id,
            settings=rec.settings,
            credentials=self.arb.credentials_for(rec.user_id),
            exchange=self.arb.config.exchange,
            journal_path=str(journal),
            events_endpoint=events_endpoint(Path(paths.runtime_dir)),
            logging=self.arb.config.logging,
            restarts=rec.restarts,
            parallel_strategies=self.arb.config.parallel_for(rec.user_id),
            spent_elsewhere=self.arb.observer.today.elsewhere(rec.user_id),
            copied_elsewhere=self.arb.observer.today.copied_elsewhere(rec.user_id),
            **_known_volumes(rec),
            **_tuning(),
        )

    def on_exit(self, rec: UserRecord, child: Child, code: int | None) -> None:
        """From the spawner when a process died: handled in a watched task (below)."""
        self.arb.tasks.start(self._exited(rec, child, code), name=f"exit of user {rec.user_id}")

    async def _exited(self, rec: UserRecord, child: Child, code: int | None) -> None:
        # The sentinel can fire before the child's last frames (its Summary) were read off
        # the events socket: give them a moment, so the reason is the child's own.
        if rec.child is child and rec.summary is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.summary_wait):
                    await rec.summary_seen.wait()
        arb = self.arb
        decision = rec.exited(
            child,
            code,
            now=arb.mono(),
            at=self.at(),
            supervisor_stopping=bool(arb.stopping),
            redact=arb.redact,
        )
        arb.observer.exited(rec, code, decision)
        if decision is not None and rec.remove_after_exit:
            if self.records.get(rec.user_id) is rec:
                del self.records[rec.user_id]
            log.info("user_removed", user_id=rec.user_id, reason=decision.reason)
        arb.wake()

    # ------------------------------------------------------------ events from children
    async def serve_events(self) -> None:
        arb = self.arb
        handled = 0
        while True:
            handled += 1
            if handled % FAIR_SHARE == 0:
                # a receive that finds a message waiting completes without yielding: with
                # hundreds of users sending, this loop would starve the heartbeat and the
                # control socket (children then stop as SUPERVISOR_LOST, by the hundred)
                await asyncio.sleep(0)
            got = await arb.runtime.receive()
            arb.faults.hit("events")
            if got is None:
                continue
            uid, payload = got
            try:
                ev = decode_event(payload)
            except ProtocolError as exc:
                log.warning("bad_event", user_id=uid, error=str(exc))
                continue
            rec = self.records.get(uid)
            if rec is None or getattr(ev, "user_id", uid) != uid:
                continue
            try:
                self.on_event(rec, ev)
            except Exception:  # one odd event must not deafen us to every user
                log.exception("event_handling_failed", user_id=uid, kind=type(ev).__name__)

    def on_event(self, rec: UserRecord, ev: m.Msg) -> None:
        if isinstance(ev, m.Hello):
            # A Ping at once: the child's heartbeat clock runs from its own start, and the
            # next round of Pings may be up to a heartbeat away.
            self.arb.runtime.send(rec.user_id, self.ping(self.at(), rec.user_id))
            for cmd in rec.hello(ev.pid, at=self.at()):
                self.arb.runtime.send(rec.user_id, cmd)
        rec.on_event(ev, now=self.arb.mono(), redact=self.arb.redact, wall=self.at())
        self.arb.observer.event(rec, ev)
        if isinstance(ev, m.ErrorReport):
            level = "error" if ev.fatal else "warning"
            getattr(log, level)("user_error", user_id=rec.user_id, kind=ev.kind, fatal=ev.fatal)

    def ping(self, now: float, user_id: str) -> m.Ping:
        pool = self.arb.pool
        if pool is None:
            return m.Ping(at=now)
        spent = self.arb.observer.today.elsewhere(user_id)
        return m.Ping(at=now, trade_until=pool.trade_until(), spent_elsewhere=spent)

    async def serve_heartbeat(self) -> None:
        """Every heartbeat: a Ping to every process, with the stop command in force (a lost
        one is re-sent; a repeated Drain is the same drain); systemd's watchdog and status."""
        arb = self.arb
        last_status = last_dog = 0.0
        last_ping: float | None = None
        while True:
            arb.faults.hit("heartbeat")
            now = self.at()
            mono = time.monotonic()
            if last_ping is not None and mono - last_ping > 2 * arb.heartbeat:
                # the loop was held (users take us for lost after HEARTBEAT_TIMEOUT)
                log.warning("heartbeat_late", seconds=round(mono - last_ping, 2))
            last_ping = mono
            for rec in self.children():
                try:  # a child that misses Pings stops trading: never skip the others
                    arb.runtime.send(rec.user_id, self.ping(now, rec.user_id))
                    if rec.stop_command is not None:
                        arb.runtime.send(rec.user_id, rec.stop_command)
                    for cmd in rec.strategy_stops.values():  # idempotent, like the Drain
                        arb.runtime.send(rec.user_id, cmd)
                except Exception:
                    log.exception("heartbeat_send_failed", user_id=rec.user_id)
            wd = arb.notifier.watchdog_interval
            if wd is not None and mono - last_dog >= wd:
                arb.notifier.watchdog()
                last_dog = mono
            if mono - last_status >= 5.0:
                arb.notifier.status(arb.status_line())
                last_status = mono
            await asyncio.sleep(min(arb.heartbeat, wd) if wd else arb.heartbeat)

    # ------------------------------------------------------------ requests
    def _matching(self, strategy_id: str | None, user_id: str | None) -> list[UserRecord]:
        return [
            r
            for r in self.records.values()
            if (user_id is None or r.user_id == user_id)
            and (strategy_id is None or strategy_id in r.rows)
        ]

    def _send(self, rec: UserRecord, cmds: list[m.Command]) -> None:
        for cmd in cmds:
            self.arb.runtime.send(rec.user_id, cmd)

    def stop(self, rec: UserRecord, *, now: bool, reason: str) -> None:
        cmd = rec.stop(now=now, reason=reason, at=self.at(), mono=self.arb.mono())
        if cmd is not None:
            self.arb.runtime.send(rec.user_id, cmd)

    def remove(self, rec: UserRecord, *, now: bool, reason: str) -> None:
        """Forget this user: at once when it has no process, else when its process exits
        (stopped for ``reason``; STARTING too: its fork may be under way)."""
        if rec.state in ALIVE:
            rec.remove_when_exited()
            self.stop(rec, now=now, reason=reason)
        elif self.records.get(rec.user_id) is rec:
            del self.records[rec.user_id]

    def stop_users(self, strategy_id: str | None, user_id: str | None, *, now: bool) -> list[str]:
        """Drain (or StopNow) the matching users; queued ones stop at once. Never waits.

        With a ``strategy_id`` only that strategy of each user stops (its other strategies
        go on); a user whose last strategy to run it was stops as a whole."""
        hit = [r for r in self._matching(strategy_id, user_id) if r.can_stop]
        stopped = []
        for rec in hit:
            cmds = rec.operator_stop(strategy_id, now=now, at=self.at(), mono=self.arb.mono())
            if cmds is None:
                continue  # reached or skipped: nothing to stop
            self._send(rec, cmds)
            stopped.append(rec.user_id)
        self.arb.wake()
        return stopped

    def config_fatal(self, user_id: str, strategy_id: str, text: str) -> None:
        """This strategy of this user cannot work as configured (``text`` names the config
        line): FATAL; its user's other strategies go on. A reload changing it revives it."""
        rec = self.records.get(user_id)
        if rec is None:
            return
        cmds = rec.config_fatal(strategy_id, text, at=self.at(), mono=self.arb.mono())
        if cmds is None:
            return  # it had no work left
        self._send(rec, cmds)
        self.arb.wake()

    def stop_all(self, *, now: bool, reason: str) -> None:
        for rec in list(self.records.values()):
            if rec.can_stop:
                self.stop(rec, now=now, reason=reason)

    def start_users(self, strategy_id: str | None, user_id: str | None) -> list[str]:
        """Queue the matching finished users again (crash history cleared), checked first."""
        hit = [r for r in self._matching(strategy_id, user_id) if r.can_requeue]
        for rec in hit:
            rec.requeue("start requested", at=self.at(), reset=True)
        if hit:
            self.arb.tasks.start(self.check(hit), "volumes")
        return [r.user_id for r in hit]

    # ------------------------------------------------------------ reload, new day
    def apply_reload(self, plan: ReloadPlan) -> list[UserRecord]:
        """Apply a reload's plan; returns the users whose volume must be checked."""
        to_check: list[UserRecord] = []
        for uid in plan.removed:
            if uid not in self.records:
                continue
            self.remove(self.records[uid], now=False, reason="removed from config")
        for uid, settings in plan.added.items():
            if self.arb.pool is None:  # a pool node gets new users by claiming them
                to_check.append(self.add(uid, settings))
        for uid, settings in plan.changed.items():
            if uid not in self.records:  # a pool's user that another node runs
                continue
            rec = self.records[uid]
            before = {sid: row.settings for sid, row in rec.rows.items()}
            update = rec.reconfigure(settings)
            if rec.child is not None:
                self.arb.runtime.send(uid, update)
            if rec.revive(before, at=self.at()):  # FATAL for its config, now changed
                to_check.append(rec)
        for uid in plan.new_strategies:
            if uid not in self.records:
                continue
            rec = self.records[uid]
            if rec.state in (State.DONE, State.SKIPPED):
                rec.requeue("new strategy on reload", at=self.at())
                to_check.append(rec)
        return to_check

    def new_day(self, settings_by_user: dict[str, list[EffectiveSettings]]) -> None:
        for uid, settings in settings_by_user.items():
            rec = self.records.get(uid)
            if rec is None:
                self.add(uid, settings)
            else:
                rec.new_day(settings, at=self.at())

    # ------------------------------------------------------------ the end
    async def kill_stragglers(self) -> None:
        alive = self.children()
        for rec in alive:
            assert rec.child is not None
            log.warning("killing_user_process", user_id=rec.user_id, pid=rec.child.pid)
            rec.child.kill()
        deadline = time.monotonic() + 5.0
        while any(r.child is not None for r in alive) and time.monotonic() < deadline:
            await self.arb.wait(0.1)

    def status_line(self, phase: Phase, day: str) -> str:
        counts: dict[str, int] = {}
        for r in self.records.values():
            counts[r.state.value] = counts.get(r.state.value, 0) + 1
        parts = " ".join(f"{k.lower()}={v}" for k, v in sorted(counts.items()))
        rows = [row for r in self.records.values() for row in r.rows.values()]
        reached = sum(1 for row in rows if row.reached or row.skipped)
        trades = sum(row.trades for row in rows)
        return f"{phase} day={day} {parts} targets={reached}/{len(rows)} trades={trades}"


def _tuning() -> dict[str, Any]:
    """User-process knobs from $ALPHAVOL_TUNING (JSON of ``userproc.tuning.Tuning``
    fields): production leaves it unset; tests and benchmarks shrink the delays."""
    raw = os.environ.get("ALPHAVOL_TUNING")
    if not raw:
        return {}
    from userproc.tuning import Tuning

    return {"tuning": msgspec.json.decode(raw.encode(), type=Tuning)}


def _known_volumes(rec: UserRecord) -> dict[str, Any]:
    """The supervisor's own check of today's volume, handed to the first process of the
    day (no trade since that read) so it need not ask again; the user process uses a
    figure only while it is fresh."""
    if rec.restarts:
        return {}
    rows = [r for r in rec.rows.values() if r.current_volume is not None and r.volume_at]
    fresh = [r for r in rows if r.pending_credit == 0 and not r.trades]
    if not fresh:
        return {}
    return {
        "known_volumes": {r.settings.strategy_id: r.current_volume for r in fresh},
        "known_volumes_at": min(r.volume_at or 0.0 for r in fresh),
    }
