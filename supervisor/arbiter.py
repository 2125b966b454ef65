"""The supervisor's main loop (gunicorn's arbiter, in asyncio).

Read top to bottom: ``run`` sets up the sockets and signal handlers, then ``_days`` does
one UTC day after another: check every user's volume, start the users under target (at
most ``max_concurrent_users`` at once), restart the ones that crash (``supervisor.restart``),
and when everyone is finished either exit (``--once``) or wait for the next day.

Signal handlers only enqueue; the loop acts on them (SIGHUP: reload; first SIGINT/SIGTERM:
drain; second: stop now). Exits of user processes arrive as events (``supervisor.spawn``).
Control requests are answered at once by ``supervisor.control`` from what is in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import structlog
import zmq
import zmq.asyncio

from exchange.clock import SYSTEM_CLOCK, Clock
from protocol import codec
from protocol import messages as m
from protocol.addresses import control_endpoint, ensure_runtime_dir, events_endpoint
from supervisor.records import Row, UserRecord, apply_event
from supervisor.render import money
from supervisor.restart import Action, RestartPolicy
from supervisor.sdnotify import Notifier
from supervisor.spawn import DEFAULT_TARGET, Child, Spawner
from supervisor.states import ALIVE, TERMINAL, State
from supervisor.volumes import check_volumes

log = structlog.get_logger(__name__)


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ[name])
    except (KeyError, ValueError):
        return default


class SupervisorError(Exception):
    """Startup problem (credentials, another supervisor running): exit 2, nothing started."""


class Arbiter:
    def __init__(
        self,
        config: Any,  # config.loader.AppConfig
        *,
        once: bool = False,
        credentials: Any = None,  # config.credentials.CredentialStore
        clock: Clock = SYSTEM_CLOCK,
        policy: RestartPolicy | None = None,
        spawner: Spawner | None = None,
        notifier: Notifier | None = None,
        heartbeat: float = m.HEARTBEAT_INTERVAL,
        stop_margin: float | None = None,
        kill_after: float | None = None,
        config_loader: Any = None,
        out=None,
    ) -> None:
        self.config = config
        self.once = once
        self.clock = clock
        self.policy = policy or RestartPolicy.from_env()
        self.spawner = spawner or Spawner(
            target=os.environ.get("ALPHAVOL_CHILD_TARGET") or DEFAULT_TARGET
        )
        self.notifier = notifier or Notifier()
        self.heartbeat = heartbeat
        self.stop_margin = (
            stop_margin if stop_margin is not None else _env_float("ALPHAVOL_STOP_MARGIN", 10.0)
        )
        self.kill_after = (
            kill_after if kill_after is not None else _env_float("ALPHAVOL_KILL_AFTER", 15.0)
        )
        self._loader = config_loader
        self._store = credentials
        self.out = out or sys.stdout
        self.records: dict[str, UserRecord] = {}
        self.pid = os.getpid()
        self.started_at = clock.time()
        self.day = clock.utc_day().isoformat()
        self.phase = "starting"
        self.next_run_at: float | None = None
        self.stopping: str | None = None  # None | "drain" | "now"
        self._signals: deque[int] = deque()
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._redact = lambda s: s
        self._orphan_wait = 0.0
        self.summary_wait = 0.5  # seconds an exited child's last frames may lag its exit

    # ---------------------------------------------------------------- helpers
    def mono(self) -> float:
        return self.clock.monotonic()

    def wake(self) -> None:
        self._wakeup.set()

    def credentials_for(self, user_id: str):
        return self._store.get(user_id)

    def _new_record(self, user_id: str, settings: list) -> UserRecord:
        rows = {s.strategy_id: Row(settings=s) for s in settings}
        return UserRecord(user_id=user_id, rows=rows, policy=self.policy)

    def _pairs_by_user(self, config: Any) -> dict[str, list]:
        out: dict[str, list] = {}
        for s in config.effective():
            out.setdefault(s.user_id, []).append(s)
        return out

    # ---------------------------------------------------------------- setup
    def _open_credentials(self, config: Any) -> None:
        """Every user of an enabled strategy must have a stored session (else exit 2)."""
        if self._store is None:
            from config.credentials import CredentialStore

            self._store = CredentialStore.open(config.paths)
        missing = []
        secrets: list[str] = []
        for uid in config.user_ids():
            try:
                secrets.extend(self._store.get(uid).secret_values())
            except Exception as exc:  # CredentialsMissing / CredentialsError
                missing.append(f"user {uid}: {exc}")
        if missing:
            raise SupervisorError("credentials: " + "; ".join(missing))
        try:
            from config import logsetup

            logsetup.add_secrets(secrets)
            self._redact = logsetup.redact
        except (ImportError, AttributeError):
            pass

    async def run(self) -> int:
        runtime = ensure_runtime_dir(Path(self.config.paths.runtime_dir))
        self._refuse_if_running(runtime)
        self._open_credentials(self.config)
        for uid, settings in self._pairs_by_user(self.config).items():
            self.records[uid] = self._new_record(uid, settings)

        self.ctx = zmq.asyncio.Context()
        self.events = self.ctx.socket(zmq.ROUTER)
        self.events.setsockopt(zmq.LINGER, 0)
        self.events.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.events.bind(events_endpoint(runtime))
        self.control = self.ctx.socket(zmq.ROUTER)
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.bind(control_endpoint(runtime))
        for name in ("events.ipc", "control.ipc"):
            with contextlib.suppress(OSError):
                os.chmod(runtime / name, 0o600)

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig)
        from supervisor.control import serve_control

        self._tasks = [
            asyncio.create_task(self._events_loop(), name="events"),
            asyncio.create_task(serve_control(self), name="control"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
        ]
        self.notifier.ready(f"checking volumes of {len(self.records)} users")
        if self._orphan_wait > 0:
            log.warning("previous_supervisor_died", waiting_seconds=self._orphan_wait)
            until = self.mono() + self._orphan_wait
            while self.mono() < until and not self._signals:  # a signal cuts it short
                await self._wait(until - self.mono())
            self._wakeup.set()
        log.info("supervisor_started", pid=self.pid, users=len(self.records), once=self.once)
        code = 1
        try:
            code = await self._days()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self._kill_stragglers()
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self.events.close(0)
            self.control.close(0)
            self.ctx.term()
            for name in ("events.ipc", "control.ipc"):
                with contextlib.suppress(OSError):
                    (runtime / name).unlink()
            self.notifier.close()
        self._print_summary()
        log.info("supervisor_exited", code=code)
        return code

    def _refuse_if_running(self, runtime: Path) -> None:
        if not (runtime / "control.ipc").exists():
            return
        from supervisor.client import ControlClient, SupervisorNotRunning

        try:
            reply = ControlClient(runtime).request(m.StatusRequest(), timeout=0.5)
        except SupervisorNotRunning:
            # A stale socket file: the last supervisor was killed. Its user processes
            # stop on their own once Pings are missing; wait for that before starting
            # anyone, so two processes never trade for the same user.
            self._orphan_wait = m.HEARTBEAT_TIMEOUT + 1.5
            return
        pid = getattr(reply, "pid", "?")
        raise SupervisorError(f"another supervisor (pid {pid}) already serves {runtime}")

    # ---------------------------------------------------------------- the days
    async def _days(self) -> int:
        while True:
            self.phase = "starting"
            self.next_run_at = None
            await self._check([r for r in self.records.values() if not r.checked])
            self.phase = "running"
            while not self.stopping and not self._all_finished():
                self._handle_signals()
                if self.stopping:
                    break
                await self._schedule()
                await self._wait(self._next_due())
            if self.stopping:
                return await self._shutdown()
            if self.once:
                return 1 if any(r.state == State.FATAL for r in self.records.values()) else 0
            if not self.config.schedule.daily_restart:
                log.info("day_finished_no_daily_restart")
            self.phase = "waiting_next_day"
            self.next_run_at = self._next_run_time()
            self.notifier.status(f"day {self.day} done; next run at {self._fmt(self.next_run_at)}")
            log.info("waiting_next_day", next_run_at=self._fmt(self.next_run_at))
            while not self.stopping and self._all_finished():
                self._handle_signals()
                if self.stopping:
                    break
                if not self.config.schedule.daily_restart:
                    await self._wait(None)
                    continue
                left = self.next_run_at - self.clock.time()
                if left <= 0:
                    self._new_day()
                    break
                await self._wait(min(left, 60.0))
            if self.stopping:
                return await self._shutdown()

    def _next_run_time(self) -> float:
        """The UTC midnight after the day being worked (+ offset). From ``self.day``, not
        from now: a day whose work ran past midnight must not skip the next one."""
        day = datetime.fromisoformat(self.day).replace(tzinfo=UTC)
        return (day + timedelta(days=1)).timestamp() + self.config.schedule.offset_seconds

    @staticmethod
    def _fmt(ts: float | None) -> str:
        if ts is None:
            return "-"
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def _new_day(self) -> None:
        self.day = self.clock.utc_day().isoformat()
        log.info("new_day", day=self.day)
        pairs = self._pairs_by_user(self.config)
        for uid, settings in pairs.items():
            old = self.records.get(uid)
            rec = self._new_record(uid, settings)
            if old is not None:
                rec.sm = old.sm
                rec.sm.to(State.PENDING, at=self.clock.time(), reason="new day")
            self.records[uid] = rec

    def _all_finished(self) -> bool:
        return all(r.state in TERMINAL for r in self.records.values())

    def _next_due(self) -> float | None:
        dues = [
            r.next_start_at - self.mono() for r in self.records.values() if r.state == State.BACKOFF
        ]
        return max(0.0, min(dues)) if dues else None

    async def _wait(self, limit: float | None) -> None:
        if not self._wakeup.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), limit)
        self._wakeup.clear()

    # ---------------------------------------------------------------- volume check
    async def _check(self, recs: list[UserRecord]) -> None:
        """Ask the exchange for these users' volumes; skip the ones at target (seed 000)."""
        recs = [r for r in recs if r.state == State.PENDING]
        if not recs:
            return
        pairs = [row.settings for r in recs for row in r.rows.values()]
        try:
            results = await check_volumes(
                pairs,
                self.credentials_for,
                self.config.exchange,
                concurrency=max(4, self.config.max_concurrent_users),
            )
        except Exception as exc:  # the users then check for themselves
            log.warning("volume_check_failed", error=self._redact(str(exc)))
            results = []
        for res in results:
            rec = self.records.get(res.user_id)
            row = rec.rows.get(res.strategy_id) if rec else None
            if row is None:
                continue
            row.basis = res.basis
            if res.current is not None:
                row.current_volume = row.start_volume = res.current
                if res.at_target:
                    row.skipped = True
                    log.info(
                        "user_at_target",
                        user_id=res.user_id,
                        strategy_id=res.strategy_id,
                        current=str(res.current),
                        target=str(res.target),
                    )
            elif res.error:
                row.last_error = self._redact(res.error)
            if res.session_expired and rec.state == State.PENDING:
                rec.sm.to(State.FATAL, at=self.clock.time(), reason=row.last_error)
        for rec in recs:
            rec.checked = True
            if rec.state == State.PENDING and not rec.settings:
                rec.sm.to(State.SKIPPED, at=self.clock.time(), reason="already at target")
                self._say(f"user {rec.user_id}: already at target, skipped")
        self.wake()

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # ---------------------------------------------------------------- spawning
    async def _schedule(self) -> None:
        """Start queued users while slots are free; respawn users whose backoff is over.

        One fork at a time, awaited (``Spawner.start`` forks in a worker thread), so Pings,
        events and control requests keep flowing while hundreds of users start. Returns
        early when a signal or a shutdown request is queued: the loop acts on it first."""
        limit = max(1, self.config.max_concurrent_users)
        alive = self._alive_count()
        for rec in list(self.records.values()):
            if self._signals or self.stopping or alive >= limit:
                return
            if self.records.get(rec.user_id) is not rec:
                continue  # removed by a reload while we were forking
            due = rec.state == State.BACKOFF and self.mono() >= rec.next_start_at
            if (rec.state == State.PENDING and rec.checked) or due:
                if due:
                    rec.restarts += 1
                await self._spawn(rec)
                alive = self._alive_count()  # others may have exited or stopped meanwhile

    def _alive_count(self) -> int:
        return sum(1 for r in self.records.values() if r.state in ALIVE)

    async def _spawn(self, rec: UserRecord) -> bool:
        from userproc.spec import UserSpec

        try:
            paths = self.config.paths
            journal = paths.journal_path(rec.user_id)
            journal.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            spec = UserSpec(
                user_id=rec.user_id,
                settings=rec.settings,
                credentials=self.credentials_for(rec.user_id),
                exchange=self.config.exchange,
                journal_path=str(journal),
                events_endpoint=events_endpoint(Path(paths.runtime_dir)),
                logging=self.config.logging,
                restarts=rec.restarts,
                **self._tuning(),
            )
        except Exception as exc:
            reason = self._redact(f"could not start: {type(exc).__name__}: {exc}")
            rec.sm.to(State.FATAL, at=self.clock.time(), reason=reason)
            return False
        rec.summary = None
        rec.settings_changed = None  # the spec carries the latest settings
        rec.summary_seen = asyncio.Event()
        rec.stop_command = None
        rec.phase = None
        # STARTING before the fork: while it is in flight the user counts against the
        # limit, and a stop or a reload meanwhile takes the ALIVE path (the stop command
        # reaches the child with its first Ping).
        edge_reason = "forking" + (f", restart {rec.restarts}" if rec.restarts else "")
        rec.sm.to(State.STARTING, at=self.clock.time(), reason=edge_reason)
        try:
            child = await self.spawner.start(
                spec, on_exit=lambda c, code, rec=rec: self._on_exit(rec, c, code), now=self.mono()
            )
        except Exception as exc:
            reason = self._redact(f"could not start: {type(exc).__name__}: {exc}")
            at = self.clock.time()
            if rec.state == State.STOPPING:
                rec.sm.to(State.STOPPED, at=at, reason=f"stopped before it started ({reason})")
            else:
                rec.sm.to(State.FATAL, at=at, reason=reason)
            if rec.remove_after_exit:
                self.records.pop(rec.user_id, None)
            self.wake()
            return False
        child.started = self.mono()
        rec.child = child
        if rec.state == State.STARTING:
            rec.sm.reason = f"pid {child.pid}" + (
                f", restart {rec.restarts}" if rec.restarts else ""
            )
        return True

    def _tuning(self) -> dict[str, Any]:
        """User-process knobs from $ALPHAVOL_TUNING (JSON of ``userproc.tuning.Tuning``
        fields): production leaves it unset; tests and benchmarks shrink the delays."""
        raw = os.environ.get("ALPHAVOL_TUNING")
        if not raw:
            return {}
        from userproc.tuning import Tuning

        return {"tuning": msgspec.json.decode(raw.encode(), type=Tuning)}

    def _on_exit(self, rec: UserRecord, child: Child, code: int | None) -> None:
        """The sentinel can fire before the child's last frames (its Summary) were read
        off the events socket: give them a moment, so the reason is the child's own."""
        if rec.child is not child:
            return
        if rec.summary is not None:
            self._finish_exit(rec, child, code)
            return

        async def settle() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rec.summary_seen.wait(), self.summary_wait)
            self._finish_exit(rec, child, code)

        self._spawn_task(settle())

    def _finish_exit(self, rec: UserRecord, child: Child, code: int | None) -> None:
        try:
            self._decide_exit(rec, child, code)
        except Exception:  # keep the loop alive; the record says what went wrong
            log.exception("exit_handling_failed", user_id=rec.user_id, exitcode=code)
            rec.child = None
            if rec.sm.can(State.FATAL):
                rec.sm.to(State.FATAL, at=self.clock.time(), reason="supervisor error on exit")
            self.wake()

    def _decide_exit(self, rec: UserRecord, child: Child, code: int | None) -> None:
        if rec.child is not child:
            return
        rec.child = None
        now = self.mono()
        requested = rec.stop_command is not None
        d = rec.crashes.on_exit(
            code, now=now, ran_for=now - child.started, requested_stop=requested
        )
        reason = d.reason
        if rec.summary is not None and rec.summary.reason:
            reason = f"{reason}: {self._redact(rec.summary.reason)}"
        elif d.action == Action.FATAL and rec.last_error:
            reason = f"{reason}: {rec.last_error}"
        at = self.clock.time()
        if rec.remove_after_exit:
            self.records.pop(rec.user_id, None)
            log.info("user_removed", user_id=rec.user_id, reason=reason)
        elif d.action == Action.DONE:
            if rec.summary is None or all(
                s.reached for s in rec.summary.strategies if s.strategy_id in rec.rows
            ):
                for row in rec.rows.values():
                    row.reached = row.reached or not row.skipped
            rec.sm.to(State.DONE, at=at, reason=reason)
        elif d.action == Action.STOPPED:
            rec.sm.to(State.STOPPED, at=at, reason=reason)
        elif d.action == Action.FATAL:
            rec.sm.to(State.FATAL, at=at, reason=reason)
        elif self.stopping:
            rec.sm.to(State.STOPPING, at=at, reason=reason)
            rec.sm.to(State.STOPPED, at=at, reason="supervisor stopping")
        else:
            rec.next_start_at = now + d.delay
            rec.sm.to(State.BACKOFF, at=at, reason=f"{reason}; restart in {d.delay:g} s")
        self.wake()

    # ---------------------------------------------------------------- events from children
    async def _events_loop(self) -> None:
        while True:
            frames = await self.events.recv_multipart()
            if len(frames) < 2:
                continue
            uid = frames[0].decode(errors="replace")
            try:
                ev = codec.decode(frames[-1])
            except codec.ProtocolError as exc:
                log.warning("bad_event", user_id=uid, error=str(exc))
                continue
            rec = self.records.get(uid)
            if rec is None or getattr(ev, "user_id", uid) != uid:
                continue
            try:
                self._on_event(rec, ev)
            except Exception:  # one odd event must not deafen us to every user
                log.exception("event_handling_failed", user_id=uid, kind=type(ev).__name__)

    def _on_event(self, rec: UserRecord, ev: m.Msg) -> None:
        if isinstance(ev, m.Hello):
            # A Ping at once: the child's heartbeat clock runs from its own start, and the
            # next round of Pings may be up to a heartbeat away.
            self.send(rec.user_id, m.Ping(at=self.clock.time()))
            if rec.state == State.STARTING:
                rec.sm.to(State.RUNNING, at=self.clock.time(), reason=f"pid {ev.pid}")
            if rec.stop_command is not None:
                self.send(rec.user_id, rec.stop_command)
            if rec.settings_changed is not None:
                self.send(rec.user_id, m.UpdateSettings(settings=rec.settings_changed))
        apply_event(rec, ev, now=self.mono(), redact=self._redact)
        if isinstance(ev, m.Summary):
            rec.summary_seen.set()
        if isinstance(ev, m.ErrorReport):
            log.warning("user_error", user_id=rec.user_id, kind=ev.kind, fatal=ev.fatal)

    def send(self, user_id: str, msg: m.Msg) -> None:
        """Queue a command to a child; never waits (ROUTER drops it if the child is gone)."""
        fut = self.events.send_multipart([user_id.encode(), codec.encode(msg)], flags=zmq.NOBLOCK)
        if isinstance(fut, asyncio.Future):
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def _heartbeat_loop(self) -> None:
        last_status = 0.0
        last_dog = 0.0
        while True:
            now = self.clock.time()
            for rec in list(self.records.values()):
                if rec.child is None:
                    continue
                try:  # a child that misses Pings stops trading: never skip the others
                    self.send(rec.user_id, m.Ping(at=now))
                    if rec.stop_command is not None:
                        self.send(rec.user_id, rec.stop_command)
                except Exception:
                    log.exception("heartbeat_send_failed", user_id=rec.user_id)
            mono = time.monotonic()
            wd = self.notifier.watchdog_interval
            if wd is not None and mono - last_dog >= wd:
                self.notifier.watchdog()
                last_dog = mono
            if mono - last_status >= 5.0:
                self.notifier.status(self.status_line())
                last_status = mono
            await asyncio.sleep(min(self.heartbeat, wd) if wd else self.heartbeat)

    def status_line(self) -> str:
        counts: dict[str, int] = {}
        for r in self.records.values():
            counts[r.state.value] = counts.get(r.state.value, 0) + 1
        parts = " ".join(f"{k.lower()}={v}" for k, v in sorted(counts.items()))
        rows = [row for r in self.records.values() for row in r.rows.values()]
        reached = sum(1 for row in rows if row.reached or row.skipped)
        trades = sum(row.trades for row in rows)
        return f"{self.phase} day={self.day} {parts} targets={reached}/{len(rows)} trades={trades}"

    # ---------------------------------------------------------------- requests
    def _on_signal(self, sig: int) -> None:
        self._signals.append(sig)
        self.wake()

    def request_shutdown(self, now: bool = False) -> None:
        self._signals.append(signal.SIGTERM)
        if now:
            self._signals.append(signal.SIGTERM)
        self.wake()

    def _handle_signals(self) -> None:
        while self._signals:
            sig = self._signals.popleft()
            if sig == signal.SIGHUP:
                errors = self.reload()
                if errors:
                    log.error("reload_refused", errors=errors)
            elif self.stopping is None:
                self.stopping = "drain"
                log.info("stopping", mode="drain", signal=signal.Signals(sig).name)
            else:
                self.stopping = "now"
                log.info("stopping", mode="now", signal=signal.Signals(sig).name)

    def stop_users(self, strategy_id: str | None, user_id: str | None, *, now: bool) -> list[str]:
        """Drain (or StopNow) the matching users; queued ones stop at once. Never waits."""
        hit = []
        for rec in self.records.values():
            if user_id is not None and rec.user_id != user_id:
                continue
            if strategy_id is not None and strategy_id not in rec.rows:
                continue
            if self._stop_record(rec, now=now, reason="stop requested"):
                hit.append(rec.user_id)
        self.wake()
        return hit

    def _stop_record(self, rec: UserRecord, *, now: bool, reason: str) -> bool:
        at = self.clock.time()
        if rec.state in (State.PENDING, State.BACKOFF):
            rec.sm.to(State.STOPPED, at=at, reason=reason)
            return True
        if rec.state in ALIVE:
            cmd: m.Command = m.StopNow() if now else m.Drain()
            if rec.stop_command is None or (now and not isinstance(rec.stop_command, m.StopNow)):
                rec.stop_command = cmd
                rec.stop_sent_at = self.mono()
                rec.sm.to(State.STOPPING, at=at, reason=f"{reason} ({type(cmd).__name__})")
                self.send(rec.user_id, cmd)
            return True
        return False

    def start_users(self, strategy_id: str | None, user_id: str | None) -> list[str]:
        hit = []
        for rec in self.records.values():
            if user_id is not None and rec.user_id != user_id:
                continue
            if strategy_id is not None and strategy_id not in rec.rows:
                continue
            if rec.state in (State.STOPPED, State.FATAL, State.SKIPPED, State.DONE):
                rec.crashes.reset()
                rec.checked = False
                for row in rec.rows.values():
                    row.skipped = row.reached = False
                rec.sm.to(State.PENDING, at=self.clock.time(), reason="start requested")
                hit.append(rec.user_id)
        if hit:
            self._spawn_task(self._check([self.records[u] for u in hit]))
        return hit

    def _spawn_task(self, coro) -> None:
        t = asyncio.create_task(coro)
        self._tasks.append(t)
        t.add_done_callback(lambda t: t.cancelled() or t.exception())

    def reload(self) -> list[str] | None:
        """Reread the config; returns its errors (and changes nothing) when it is broken."""
        self.notifier.reloading()
        try:
            return self._reload()
        finally:
            self.notifier.ready(self.status_line())

    def _reload(self) -> list[str] | None:
        if self.stopping:
            return ["the supervisor is stopping"]
        loader = self._loader
        if loader is None:
            from config.loader import load_config as loader
        try:
            new = loader(self.config.source)
        except Exception as exc:  # ConfigError lists every issue, one per line
            issues = getattr(exc, "issues", None)
            lines = str(exc).splitlines() or [type(exc).__name__]
            log.error("reload_refused", issues=len(issues) if issues else None)
            return lines
        if Path(new.paths.runtime_dir) != Path(self.config.paths.runtime_dir):
            return ["paths.runtime_dir cannot change on reload (restart the service)"]
        store = self._store
        try:
            self._open_credentials(new)
        except SupervisorError as exc:
            self._store = store
            return [str(exc)]
        pairs = self._pairs_by_user(new)
        at = self.clock.time()
        added: list[UserRecord] = []
        for uid in list(self.records):
            if uid not in pairs:
                rec = self.records[uid]
                if rec.state in ALIVE:
                    rec.remove_after_exit = True
                    self._stop_record(rec, now=False, reason="removed from config")
                else:
                    del self.records[uid]
        for uid, settings in pairs.items():
            rec = self.records.get(uid)
            if rec is None:
                rec = self.records[uid] = self._new_record(uid, settings)
                added.append(rec)
                continue
            old_rows = rec.rows
            rec.rows = {}
            changed = False
            new_strategy = False
            for s in settings:
                row = old_rows.get(s.strategy_id)
                if row is None:
                    row = Row(settings=s)
                    new_strategy = True
                elif row.settings != s:
                    row.settings = s
                    changed = True
                rec.rows[s.strategy_id] = row
            changed = changed or new_strategy or set(old_rows) != set(rec.rows)
            if changed:
                rec.settings_changed = [msgspec.to_builtins(s) for s in rec.settings]
                if rec.child is not None:
                    self.send(uid, m.UpdateSettings(settings=rec.settings_changed))
            if new_strategy and rec.state in (State.DONE, State.SKIPPED):
                rec.checked = False
                rec.sm.to(State.PENDING, at=at, reason="new strategy on reload")
                added.append(rec)
        self.config = new
        log.info("config_reloaded", users=len(self.records), added=[r.user_id for r in added])
        if added:
            self._spawn_task(self._check(added))
        self.wake()
        return None

    # ---------------------------------------------------------------- stopping
    async def _shutdown(self) -> int:
        """Drain everyone (bounded), then stop now, then kill: the graceful cascade."""
        self.phase = "stopping"
        self.notifier.stopping()
        for rec in self.records.values():
            self._stop_record(rec, now=self.stopping == "now", reason="supervisor stopping")
        grace = max(
            [s.stop_grace_seconds for r in self.records.values() for s in r.settings] or [0.0]
        )
        deadline = self.mono() + grace + self.stop_margin
        escalated = self.stopping == "now"
        if escalated:
            deadline = self.mono() + self.kill_after
        while any(r.child is not None for r in self.records.values()):
            left = deadline - self.mono()
            if left <= 0:
                if escalated:
                    break
                escalated = True
                self.stopping = "now"
                deadline = self.mono() + self.kill_after
            await self._wait(max(0.0, left))
            self._handle_signals()
            if self.stopping == "now" and not escalated:
                escalated = True
                deadline = self.mono() + self.kill_after
            if escalated:
                for rec in self.records.values():
                    if rec.child is not None:
                        self._stop_record(rec, now=True, reason="supervisor stopping now")
        return 0

    async def _kill_stragglers(self) -> None:
        alive = [r for r in self.records.values() if r.child is not None]
        for rec in alive:
            log.warning("killing_user_process", user_id=rec.user_id, pid=rec.child.pid)
            rec.child.kill()
        deadline = time.monotonic() + 5.0
        while any(r.child is not None for r in alive) and time.monotonic() < deadline:
            await self._wait(0.1)

    def _print_summary(self) -> None:
        self._say(f"alphavol summary for {self.day}:")
        for rec in self.records.values():
            for row in rec.rows.values():
                state = "SKIPPED" if row.skipped else rec.state.value
                cur = "?" if row.current_volume is None else f"{row.current_volume:f}"
                self._say(
                    f"  user {rec.user_id} {row.settings.strategy_id}: {state}"
                    f" volume {cur}/{row.target:f} trades {row.trades} cost {money(row.cost)} USDT"
                    f" restarts {rec.restarts}" + (f" ({rec.sm.reason})" if rec.sm.reason else "")
                )


def run_supervisor(config: Any, *, once: bool = False, **kwargs: Any) -> int:
    """Run the supervisor in this process until it is done or stopped; returns the exit code
    (0 done or stopped, 1 some user FATAL with ``once``, 2 startup problem)."""
    try:
        return asyncio.run(Arbiter(config, once=once, **kwargs).run())
    except SupervisorError as exc:
        print(f"alphavol: {exc}", file=sys.stderr)
        return 2
