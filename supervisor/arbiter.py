"""The supervisor's main loop (gunicorn's arbiter, in asyncio).

Read top to bottom: ``run`` opens the runtime directory, turns signals into commands and
starts the watched tasks (events, control, heartbeat); ``_days`` does one UTC day after
another: check every user's volume, start the users under target (at most
``max_concurrent_users`` at once), restart the ones that crash, and when everyone is
finished exit (``--once``) or wait for the next day; ``_shutdown`` drains, then stops now.

Signal handlers and control requests only enqueue a ``Cmd``; the loop acts on it:
SIGINT/SIGTERM once = drain every user, twice = stop them now; SIGHUP = reload, unless a
foreground run lost its terminal (``supervisor.terminal``): then drain and exit. A failed
task of ours (``supervisor.tasks``): drain, exit ``SupervisorExit.INTERNAL``. Users move
only by the methods of their record (``supervisor.user_record``), via ``supervisor.fleet``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import signal
import sys
from collections import deque
from typing import TYPE_CHECKING, Any, TextIO

import structlog

from exchange.clock import SYSTEM_CLOCK, Clock
from protocol import messages as m
from protocol.exitcodes import SupervisorExit
from protocol.vocab import SupervisorPhase
from supervisor import reconfigure
from supervisor.books_today import BooksToday
from supervisor.days import fmt_utc, next_run_time
from supervisor.errors import SupervisorError
from supervisor.exit_summary import summary_lines
from supervisor.faults import Faults
from supervisor.fleet import Fleet
from supervisor.listener import check_open_files
from supervisor.observer import Observer
from supervisor.reload_plan import settings_by_user
from supervisor.restart import RestartPolicy
from supervisor.runtime import Runtime
from supervisor.sdnotify import Notifier
from supervisor.sessions import Sessions
from supervisor.spawn import DEFAULT_TARGET, Spawner
from supervisor.tasks import TaskWatch
from supervisor.terminal import Terminal, detach_stdio

if TYPE_CHECKING:
    from supervisor.user_record import UserRecord

log = structlog.get_logger(__name__)


class Cmd(enum.Enum):
    STOP = "stop"  # SIGINT/SIGTERM: drain; when already stopping: now
    DRAIN = "drain"  # `shutdown`: drain (asking again changes nothing)
    STOP_NOW = "stop_now"  # `shutdown --now`
    HANGUP = "hangup"  # SIGHUP: reload; drain and exit if our terminal is gone


class StopMode(enum.StrEnum):
    DRAIN = "drain"
    NOW = "now"


SIGNALS = {signal.SIGINT: Cmd.STOP, signal.SIGTERM: Cmd.STOP, signal.SIGHUP: Cmd.HANGUP}


def _env_float(name: str, default: float, given: float | None) -> float:
    with contextlib.suppress(KeyError, ValueError):
        return given if given is not None else float(os.environ[name])
    return default


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
        out: TextIO | None = None,
        token_check: Any = None,  # config.online.Located: `run` could not check tokens
    ) -> None:
        self.config = config
        self.once = once
        self.clock = clock
        self.policy = policy or RestartPolicy.from_env()
        target = os.environ.get("ALPHAVOL_CHILD_TARGET") or DEFAULT_TARGET
        self.spawner = spawner or Spawner(target=target)
        self.notifier = notifier or Notifier()
        self.heartbeat = heartbeat
        self.stop_margin = _env_float("ALPHAVOL_STOP_MARGIN", 10.0, stop_margin)
        self.kill_after = _env_float("ALPHAVOL_KILL_AFTER", 15.0, kill_after)
        self.reload_lock = asyncio.Lock()  # one reread of the config at a time
        self.reload_next: asyncio.Future | None = None  # the one waiting its turn, shared
        self.token_check = token_check
        self.sessions = Sessions(credentials)
        self.credentials_for = self.sessions.get
        self.redact = self.sessions.redact
        self.out = out or sys.stdout
        self.fleet = Fleet(self)
        # books, notifications, metrics (issue 13)
        self.observer = Observer(self, BooksToday(self))
        self.metrics: Any = None
        self.dashboard: Any = None  # its bounded door (listener.Door), when dashboard.listen is set
        self.dashboard_token = ""
        self.pool: Any = None  # supervisor.pool.node.Pool with `store:` (issue 22)
        self.tasks = TaskWatch(self._task_failed)
        self.faults = Faults.from_env()
        self.pid = os.getpid()
        self.started_at = clock.time()
        self.day = clock.utc_day().isoformat()
        self.phase: SupervisorPhase = "starting"
        self.next_run_at: float | None = None
        self.stopping: StopMode | None = None
        self.failed: str | None = None  # the first of our tasks that failed
        self._commands: deque[tuple[Cmd, str]] = deque()
        self._wakeup = asyncio.Event()

    # ---------------------------------------------------------------- helpers
    @property
    def records(self) -> dict[str, UserRecord]:
        return self.fleet.records

    def mono(self) -> float:
        return self.clock.monotonic()

    def wake(self) -> None:
        self._wakeup.set()

    def say(self, text: str) -> None:
        try:
            print(text, file=self.out, flush=True)
        except OSError as exc:  # a terminal that hung up before its SIGHUP reached us
            log.warning("output_failed", error=str(exc))

    def status_line(self) -> str:
        line = self.fleet.status_line(self.phase, self.day)
        return line if self.pool is None else f"{line} {self.pool.status_text()}"

    async def wait(self, limit: float | None) -> None:
        """Until woken (a command, an exit, a check done) or ``limit`` seconds passed."""
        if not self._wakeup.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(limit):
                    await self._wakeup.wait()
        self._wakeup.clear()

    # ---------------------------------------------------------------- setup and teardown
    async def run(self) -> int:
        self.runtime = Runtime(
            self.config.paths.runtime_dir, config_file=getattr(self.config, "source", None)
        )
        self.runtime.check()
        check_open_files(  # a reserve for ZeroMQ (listener), and room for each door
            self.config.max_concurrent_users, doors=1 + bool(self.config.dashboard.listen)
        )
        if self.config.dashboard.listen:  # an unreadable token file: exit 2 before anything
            from supervisor.dashboard.token import read_token

            self.dashboard_token = read_token(self.config.dashboard.token_file)
        if self.config.store is not None:  # users come as this node claims them
            from supervisor.pool.node import Pool

            if self.once:
                raise SupervisorError("run --once does not apply to a node of a pool (store:)")
            self.pool = Pool(self)
        else:
            self.sessions.check(self.config)
            for uid, settings in settings_by_user(self.config).items():
                self.fleet.add(uid, settings)
        self.runtime.bind()
        self.terminal = Terminal()  # before our SIGHUP handler: it reads the inherited one
        loop = asyncio.get_running_loop()
        for sig, cmd in SIGNALS.items():
            loop.add_signal_handler(sig, self._enqueue, cmd, sig.name)
        from supervisor.control import serve_control

        self.tasks.watch_callbacks(loop)
        self.tasks.service("events", self.fleet.serve_events)
        self.tasks.service("control", lambda: serve_control(self))
        self.tasks.service("heartbeat", self.fleet.serve_heartbeat)
        if self.pool is not None:
            self.tasks.service("pool", self.pool.serve)
            self.tasks.service("pool fence", self.pool.serve_fence)
            self.tasks.service("pool books", self.pool.serve_books)
        self.observer.start(self)  # books, notifications, metrics: off the trading path
        if self.token_check is not None:  # the exchange did not answer `run`'s check
            from supervisor.tokencheck import watch_tokens

            self.tasks.start(watch_tokens(self, self.token_check), "token check")
        self.notifier.ready(f"checking volumes of {len(self.records)} users")
        code: int = SupervisorExit.INTERNAL
        try:
            if self.runtime.orphan_wait > 0:
                log.warning("previous_supervisor_died", waiting_seconds=self.runtime.orphan_wait)
                until = self.mono() + self.runtime.orphan_wait
                while self.mono() < until and not self._commands:  # a command cuts it short
                    await self.wait(until - self.mono())
            log.info("supervisor_started", pid=self.pid, users=len(self.records), once=self.once)
            try:
                code = await self._days()
            except Exception as exc:
                log.error("supervisor_task_failed", task="main loop", exc_info=exc)
                self._task_failed("main loop", False)
                code = await self._shutdown()
        finally:
            await self.fleet.kill_stragglers()
            await self.observer.close()  # a signal meanwhile is only enqueued
            for sig in SIGNALS:
                loop.remove_signal_handler(sig)
            await self.tasks.close()
            self.runtime.close()
            self.notifier.close()
        if self.pool is not None and self.pool.refused:
            raise SupervisorError(self.pool.refused)
        await self.observer.today.last_reading()
        for line in summary_lines(self):
            self.say(line)
        log.info("supervisor_exited", code=int(code))
        return int(code)

    # ---------------------------------------------------------------- the days
    async def _days(self) -> int:
        while True:
            self.phase = "starting"
            self.next_run_at = None
            await self.fleet.check([r for r in self.records.values() if not r.checked])
            self.phase = "running"
            while self._going_on() and not self.fleet.all_finished():
                if self.pool is not None:  # users claimed since
                    await self.fleet.check([r for r in self.records.values() if not r.checked])
                limit = max(1, self.config.max_concurrent_users)
                await self.fleet.schedule(limit, lambda: bool(self._commands or self.stopping))
                await self.wait(self.fleet.next_due(self.mono()))
            if self.stopping:
                return await self._shutdown()
            if self.once:
                ok = self.fleet.all_reached()
                return SupervisorExit.OK if ok else SupervisorExit.USERS_FAILED
            self.phase = "waiting_next_day"
            self.next_run_at = next_run_time(self.day, self.config.schedule.offset_seconds)
            self.notifier.status(f"day {self.day} done; next run at {fmt_utc(self.next_run_at)}")
            log.info("waiting_next_day", next_run_at=fmt_utc(self.next_run_at))
            while self._going_on() and self.fleet.all_finished():
                if not self.config.schedule.daily_restart:
                    await self.wait(None)
                    continue
                left = self.next_run_at - self.clock.time()
                if left <= 0:
                    self.day = self.clock.utc_day().isoformat()
                    log.info("new_day", day=self.day)
                    if self.pool is not None:
                        self.pool.new_day()
                    else:
                        self.fleet.new_day(settings_by_user(self.config))
                    break
                await self.wait(min(left, 60.0))
            if self.stopping:
                return await self._shutdown()

    # ---------------------------------------------------------------- commands
    def _enqueue(self, cmd: Cmd, source: str) -> None:
        """Signal handlers and requests only do this; the loop acts (``_going_on``)."""
        self._commands.append((cmd, source))
        self.wake()

    def request_shutdown(self, now: bool = False) -> None:
        self._enqueue(Cmd.STOP_NOW if now else Cmd.DRAIN, "shutdown request")

    def _going_on(self) -> bool:
        """Act on the queued commands; False once the supervisor is stopping."""
        while self._commands:
            cmd, source = self._commands.popleft()
            if cmd is Cmd.HANGUP and not self.terminal.hung_up():
                self.tasks.start(self.reload(), "reload")  # read off the loop
                continue
            if cmd is Cmd.HANGUP:  # writes to a hung-up terminal fail with EIO
                detach_stdio()
                log.warning("terminal_lost", action="draining every user, then exiting")
            now = cmd is Cmd.STOP_NOW or (cmd is Cmd.STOP and self.stopping is not None)
            self._stop(StopMode.NOW if now else StopMode.DRAIN, source)
        return self.stopping is None

    def _stop(self, mode: StopMode, source: str) -> None:
        if self.stopping is StopMode.NOW or self.stopping is mode:
            return  # a repeated drain is the same drain
        self.stopping = mode
        log.info("stopping", mode=mode.value, by=source)

    def _task_failed(self, name: str, again: bool) -> None:
        """A task of ours failed (``TaskWatch`` logged its traceback): drain, exit non-zero;
        stop now when a service loop the drain needs failed twice."""
        self.failed = self.failed or name
        self._enqueue(Cmd.STOP_NOW if again else Cmd.DRAIN, f"{name} failed")

    async def reload(self) -> list[str] | None:
        """Reread the config (``supervisor.reconfigure``); returns why it was refused."""
        return await reconfigure.reload(self)

    # ---------------------------------------------------------------- stopping
    async def _shutdown(self) -> int:
        """Drain everyone (bounded by the largest stop grace + margin), then stop now
        (bounded by kill_after), then ``run`` kills what is left: the graceful cascade."""
        self.phase = "stopping"
        self.notifier.stopping()
        escalated = self.stopping is StopMode.NOW
        self.fleet.stop_all(now=escalated, reason="supervisor stopping")
        grace = self.fleet.stop_grace() + self.stop_margin
        deadline = self.mono() + (self.kill_after if escalated else grace)
        while self.fleet.children():
            left = deadline - self.mono()
            if left > 0:
                await self.wait(left)
                self._going_on()
            elif escalated:
                break
            else:
                self._stop(StopMode.NOW, "drain grace over")
            if self.stopping is StopMode.NOW and not escalated:
                escalated = True
                deadline = self.mono() + self.kill_after
                self.fleet.stop_all(now=True, reason="supervisor stopping now")
        return SupervisorExit.INTERNAL if self.failed else SupervisorExit.OK
