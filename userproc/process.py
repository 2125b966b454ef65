"""One user's job from start to Summary.

``UserProcess`` opens what the job needs on one ``AsyncExitStack`` (the supervisor link,
the journal and its lock, the REST client, the user stream), runs it (reconcile what an
earlier run left, then the strategies), maps how it ended to an exit status
(``userproc.exits``, the one table), and winds down whatever happened: cancel what is
still open, finish and sell what a cut-short round trip bought, report loudly what could
not be, and always end with a ``Summary``. Each wind-down and closing step is guarded,
so one that fails never skips the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import structlog
import zmq.asyncio

from config.settings import EffectiveSettings
from exchange.client import AlphaClient
from exchange.clock import SYSTEM_CLOCK, Clock
from exchange.stream import StreamConnected, StreamDisconnected, StreamEvent, UserStream
from protocol import messages as m
from protocol.exitcodes import Exit
from userproc.errors import BadSetup, ExchangeDown, StopRequested, StrategyFailed, UserStop
from userproc.exits import Ending, ending_of, finished, unfinished, with_forced
from userproc.journal import Journal, JournalBusy, TradeRow, lock_user
from userproc.lifecycle import Lifecycle, Phase
from userproc.link import SupervisorLink
from userproc.recovery import adopt_orphans, reconcile
from userproc.runner import StrategyRunner
from userproc.scope import owned_tokens
from userproc.session import Session
from userproc.spec import UserSpec
from userproc.teardown import TEARDOWN_SECONDS, cancel_and_wait
from userproc.tracker import OrderState, OrderTracker

log = structlog.get_logger(__name__)

FINISH_ON_EXIT_SECONDS = 15.0  # well inside the supervisor's hard-kill limit


class UserProcess:
    """One user's job from start to Summary (see the module docstring)."""

    def __init__(
        self,
        spec: UserSpec,
        *,
        clock: Clock = SYSTEM_CLOCK,
        life: Lifecycle | None = None,
        ctx: zmq.asyncio.Context | None = None,
    ) -> None:
        self.spec = spec
        self.clock = clock
        self.life = life or Lifecycle(clock)
        self.ctx = ctx
        self.t0 = clock.monotonic()
        self.summaries: list[m.StrategySummary] = []
        self.leftovers: list[m.Leftover] = []
        self.journal: Journal | None = None
        self.session: Session | None = None
        self.stream: UserStream | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.summary: m.Summary | None = None

    async def run(self) -> Exit:
        async with contextlib.AsyncExitStack() as stack:
            try:
                await self._open(stack)
                await self._trade()
                ending = finished(self.life.reason(), self.life.stopping())
            except Exception as exc:
                ending = ending_of(exc, self.spec.user_id)
                if ending.exit is Exit.CRASH and not isinstance(exc, JournalBusy | UserStop):
                    log.exception("user_process_error", error=type(exc).__name__)
            ending = await self._guard("wind_down", self._wind_down(ending), ending)
        return ending.exit

    async def _guard(self, step: str, aw: Awaitable[Any], default: Any = None) -> Any:
        try:
            return await aw
        except Exception as exc:
            log.exception("user_process_cleanup_failed", step=step, error=type(exc).__name__)
            return default

    def _push(self, stack: contextlib.AsyncExitStack, step: str, fn: Callable[[], Any]) -> None:
        async def guarded() -> None:
            async def call() -> None:
                res = fn()
                if asyncio.iscoroutine(res):
                    await res

            await self._guard(step, call())

        stack.push_async_callback(guarded)

    # ------------------------------------------------------------------ opening
    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        spec, clock, tuning = self.spec, self.clock, self.spec.tuning
        if self.ctx is None:
            self.ctx = zmq.asyncio.Context()
            self._push(stack, "context", self.ctx.term)
        link = self.link = SupervisorLink(
            self.ctx,
            spec.events_endpoint,
            spec.user_id,
            self.life,
            restarts=spec.restarts,
            clock=clock,
            tuning=tuning,
        )
        link.spent_elsewhere = spec.spent_elsewhere
        self.life.emit = lambda p, sid, r: link.send(
            m.PhaseChanged(user_id=spec.user_id, phase=p.value, strategy_id=sid, reason=r)
        )
        await link.start()
        self._push(stack, "link", link.close)
        self._push(stack, "summary", self._send_summary)  # runs just before the link closes
        if spec.settings:
            self.life.set_grace(None, spec.settings[0].stop_grace_seconds)
        problems = spec.credentials.problems()
        if problems:
            raise BadSetup("credentials unusable: " + "; ".join(problems))
        if not spec.settings:
            raise BadSetup("no strategy for this user")
        lock_fd = lock_user(spec.journal_path)
        self._push(stack, "lock", lambda: os.close(lock_fd))
        journal = self.journal = Journal(spec.journal_path)
        self._push(stack, "journal", journal.close)
        client = AlphaClient(
            base_url=spec.exchange.base_url,
            credentials=spec.credentials,
            request_timeout=spec.exchange.request_timeout_seconds,
            clock=clock,
            max_get_retries=0,  # Session.call is the one retry policy
        )
        self._push(stack, "client", client.close)
        tracker = OrderTracker()
        s = self.session = Session(
            user_id=spec.user_id,
            client=client,
            journal=journal,
            tracker=tracker,
            life=self.life,
            emit=link.send,
            clock=clock,
            tuning=tuning,
            settings=spec.settings[0],
            request_timeout=spec.exchange.request_timeout_seconds,
            known_volumes=spec.known_volumes,
            known_volumes_at=spec.known_volumes_at,
            pending_settings=lambda: link.pending_settings,
            spent_elsewhere=lambda: link.spent_elsewhere,
        )
        tracker.add_listener(self._order_update)
        tracker.add_fill_listener(s.observe_fill)
        self.stream = UserStream(
            client,
            ws_url=spec.exchange.ws_url,
            clock=clock,
            rotate_seconds=tuning.stream_rotate_seconds,
            initial_backoff=tuning.stream_initial_backoff,
            max_backoff=tuning.stream_max_backoff,
        )
        self._push(stack, "stream", self._close_stream)

    def _order_update(self, st: OrderState) -> None:
        s = self.session
        if s is not None and st.order_id in s.in_flight:
            self.link.send(
                m.OrderUpdate(
                    user_id=self.spec.user_id,
                    strategy_id=s.order_strategy.get(st.order_id, self.life.last_strategy),
                    order_id=st.order_id,
                    symbol=st.symbol,
                    side=st.side,
                    status=st.status,
                    filled_qty=st.cum_qty,
                    filled_quote=st.cum_quote,
                )
            )

    async def _on_stream_event(self, ev: StreamEvent) -> None:
        s = self.session
        assert s is not None
        if isinstance(ev, StreamConnected):
            s.stream_epoch += 1
            s.stream_up.set()
            self.tasks.append(asyncio.get_running_loop().create_task(self._refresh_in_flight()))
        elif isinstance(ev, StreamDisconnected):
            s.stream_epoch += 1
            s.stream_up.clear()
            log.warning("stream_down", reason=ev.reason)
        else:
            await s.tracker.apply_report(ev)

    async def _refresh_in_flight(self) -> None:
        assert self.session is not None
        with contextlib.suppress(Exception):
            await self.session.refresh_orders()

    # ------------------------------------------------------------------ trading
    async def _trade(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.stream is not None
        stream_task = loop.create_task(self.stream.run(self._on_stream_event))
        self.tasks.append(stream_task)
        body = loop.create_task(self._body())
        done, _ = await asyncio.wait({body, stream_task}, return_when=asyncio.FIRST_COMPLETED)
        if body not in done:  # the stream died for good (session expired, risk ...)
            body.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await body
            stream_task.result()  # raises what killed it
            raise UserStop("user stream ended")
        body.result()

    async def _body(self) -> None:
        s, life = self.session, self.life
        assert s is not None
        tu = s.tuning
        if not await life.until(s.stream_up, tu.stream_connect_timeout):
            raise ExchangeDown("user stream could not be connected")
        life.to(Phase.RECONCILING)
        await reconcile(s, {})
        first_owner = {
            t: st.strategy_id for st in reversed(self.spec.settings) for t in owned_tokens(st)
        }
        await adopt_orphans(s, first_owner, self.spec.copied_elsewhere)
        try:
            if self.spec.parallel_strategies:
                await self._side_by_side()
            else:
                await self._one_after_another()
        except StopRequested:  # stopped between strategies: a failed one still says so
            self._raise_failed()
            raise
        self._raise_failed()

    def _raise_failed(self) -> None:
        failed = [f"{x.strategy_id}: {x.error}" for x in self.summaries if x.error]
        if failed:
            raise StrategyFailed("; ".join(failed))

    async def _side_by_side(self) -> None:
        """Every strategy at once, one task each. If one ends the user (an error that is
        not its own alone), the others drain: they finish the round trip in progress,
        then the error ends the process as it would have."""
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._strategy(st)) for st in self.spec.settings]
        try:
            for next_done in asyncio.as_completed(tasks):
                await next_done
        except BaseException as exc:
            why = f"another strategy of this user ended it ({type(exc).__name__})"
            self.life.drain(why)
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _one_after_another(self) -> None:
        settings = list(self.spec.settings)
        idx = 0
        while idx < len(settings):
            self.life.check()  # a stop of the process: no next strategy
            if self.link.pending_settings is not None:  # UpdateSettings: from the next one
                settings = list(self.link.pending_settings)
                self.link.pending_settings = None
                if idx >= len(settings):
                    break
            await self._strategy(settings[idx])
            idx += 1

    async def _strategy(self, st: EffectiveSettings) -> None:
        """Run one strategy in a task of its own (its context names it); a strategy that
        cannot go on stops alone, the user's others go on."""
        assert self.session is not None
        self.session.settings = st
        runner = StrategyRunner(self.session, self.life, st)
        self.summaries.append(runner.summary)
        try:
            await asyncio.get_running_loop().create_task(runner.run())
        except StrategyFailed as exc:
            log.error("strategy_failed", strategy_id=st.strategy_id, reason=exc.reason)
            runner.summary.error = exc.reason
            self._report("bad_setup", exc.reason, fatal=True, strategy=st.strategy_id)

    # ------------------------------------------------------------------ winding down
    async def _wind_down(self, ending: Ending) -> Ending:
        life, s, journal = self.life, self.session, self.journal
        self.leftovers.extend(ending.leftovers)
        ending = with_forced(ending, life.exit, life.reason())
        if ending.exit is not Exit.OK:
            self._report(ending.exit.kind, ending.reason, fatal=ending.exit.fatal)
        open_count = 0
        if s is not None and journal is not None:
            if ending.cleanup and s.tuning.cancel_on_exit:
                if s.in_flight:
                    await self._guard("cancel_in_flight", _cancel_in_flight(s))
                if journal.open_trades():
                    await self._guard("finish_on_exit", _finish_on_exit(s))
            open_count = sum(1 for o in s.in_flight if (st := s.tracker.get(o)) and st.open)
            unfinished = journal.open_trades()
            if unfinished and ending.ours:
                ending = self._unfinished(ending, unfinished)
        life.end(ending.reason, paused=ending.exit is Exit.LEFTOVER)
        log.info("user_process_exit", exit=ending.exit.name, reason=ending.reason)
        cost = journal.cost_on(self.clock.utc_day().isoformat()) if journal else Decimal(0)
        self.summary = m.Summary(
            user_id=self.spec.user_id,
            exit_code=int(ending.exit),
            reason=ending.reason,
            strategies=self.summaries,
            open_orders=open_count,
            leftovers=self.leftovers,
            cost_today=cost,
            seconds=self.clock.monotonic() - self.t0,
        )
        return ending

    def _unfinished(self, ending: Ending, rows: list[TradeRow]) -> Ending:
        """Never end quietly with tokens or orders we cannot account for: say so loudly."""
        assert self.session is not None
        held = _bought_not_sold(self.session, rows)
        self.leftovers.extend(held)
        ending = unfinished(ending, len(rows), held)
        self._report("leftover", ending.reason, fatal=True)
        return ending

    def _report(
        self, kind: m.ErrorKind, message: str, *, fatal: bool, strategy: str | None = None
    ) -> None:
        self.link.send(
            m.ErrorReport(
                user_id=self.spec.user_id,
                kind=kind,
                message=message,
                fatal=fatal,
                strategy_id=strategy or self.life.last_strategy,
            )
        )

    async def _close_stream(self) -> None:
        for t in self.tasks:
            t.cancel()
        if self.stream is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(TEARDOWN_SECONDS):
                    await self.stream.close()
        await cancel_and_wait(self.tasks, TEARDOWN_SECONDS, "user stream")

    def _send_summary(self) -> None:
        if self.summary is None:  # the wind-down itself failed: still say goodbye
            self.summary = m.Summary(
                user_id=self.spec.user_id, exit_code=int(Exit.CRASH), reason="wind-down failed"
            )
        self.link.send(self.summary)


async def _finish_on_exit(s: Session) -> None:
    """A stop (or an error) cut a round trip short and its orders were just cancelled:
    finish it now, as a restart would (``recovery.reconcile``: fills read back, tokens
    sold), so its tokens are sold in this run. Bounded in time; what is left stays in the
    journal, and the caller reports it."""
    try:
        async with asyncio.timeout(FINISH_ON_EXIT_SECONDS):
            await reconcile(s, {})
    except Exception as exc:  # whatever it was: the caller reports what is left
        log.warning("finish_on_exit_failed", error=type(exc).__name__, detail=str(exc))


def _bought_not_sold(s: Session, rows: list[TradeRow]) -> list[m.Leftover]:
    """Tokens the unfinished trades bought and did not sell, as far as the tracker knows."""
    held: dict[tuple[str, str], Decimal] = {}
    for row in rows:
        qty = Decimal(0)
        for oid in (row.working_id, row.pending_id):
            st = s.tracker.get(oid) if oid else None
            if st is not None:
                qty += st.cum_qty if st.side == "BUY" else -st.cum_qty
        if qty > 0:
            key = (row.base_asset, row.token)
            held[key] = held.get(key, Decimal(0)) + qty
    return [m.Leftover(asset=a, token=t, quantity=q) for (a, t), q in held.items()]


async def _cancel_in_flight(s: Session) -> None:
    """Best effort on the way out: leave no open order behind if the exchange can be
    reached (else the journal holds them for the next start)."""
    for oid in list(s.in_flight):
        st = s.tracker.get(oid)
        if st is None or st.terminal or st.status == "PENDING":
            continue
        with contextlib.suppress(Exception):
            await s.client.cancel(oid, st.symbol)
    with contextlib.suppress(Exception):
        await s.refresh_orders()
