"""Entry points of the user process.

``child_main(spec)`` runs inside the process the supervisor forked: logging (secrets
registered for masking first), a fresh event loop and ``zmq.asyncio.Context``, signal
handlers that only set flags (SIGTERM/SIGINT = drain, a second one = now), then
``run_user`` and ``sys.exit`` with the status from ``protocol.exitcodes``.

``run_user`` is the whole job and is testable in-process: it connects to the supervisor,
opens the journal, the REST client and the user stream, reconciles what an earlier run
left unfinished, runs the strategies one after another and always ends with a
``Summary``. Exceptions become exit statuses here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from decimal import Decimal
from typing import NoReturn

import structlog
import zmq.asyncio

# imported here, not in the child: the fork server's template imports this module, so
# what it imports is shared by every user process instead of copied into each
from config.logsetup import add_secrets, configure_logging
from exchange.clock import SYSTEM_CLOCK, Clock
from exchange.errors import OrderRejected, RiskChallenge, SessionExpired
from protocol import messages as m
from protocol.exitcodes import Exit
from userproc.errors import BadSetup, ExchangeDown, LeftoverError, UserStop
from userproc.journal import Journal, JournalBusy, lock_user
from userproc.link import SupervisorLink
from userproc.recovery import reconcile
from userproc.runner import StrategyRunner, settings_from_update
from userproc.session import Session
from userproc.spec import UserSpec
from userproc.states import Phase, PhaseMachine
from userproc.stopping import StopControl
from userproc.tracker import OrderState, OrderTracker

log = structlog.get_logger(__name__)


def _setup_logging(spec: UserSpec) -> None:
    add_secrets(spec.credentials.secret_values())
    configure_logging(spec.logging.level, spec.logging.format, stream=sys.stderr)


def child_main(spec: UserSpec) -> NoReturn:
    _setup_logging(spec)
    structlog.contextvars.bind_contextvars(user_id=spec.user_id)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    code = Exit.CRASH
    try:
        code = loop.run_until_complete(_child(spec))
    except BaseException as exc:
        log.error("user_process_crashed", error=type(exc).__name__)
    finally:
        with contextlib.suppress(Exception):
            loop.close()
    sys.exit(int(code))


async def _child(spec: UserSpec) -> Exit:
    stop = StopControl(SYSTEM_CLOCK)
    loop = asyncio.get_running_loop()
    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
        loop.add_signal_handler(sig, stop.drain, f"{name} received")
    ctx = zmq.asyncio.Context()
    try:
        return await run_user(spec, stop=stop, ctx=ctx)
    finally:
        ctx.term()


def _stop_phase(phases: PhaseMachine, stop: StopControl) -> None:
    target = Phase.STOPPING if stop.is_now else Phase.DRAINING
    if phases.can(target):
        phases.to(target, stop.reason)
    elif phases.can(Phase.STOPPING):
        phases.to(Phase.STOPPING, stop.reason)


async def run_user(
    spec: UserSpec,
    *,
    clock: Clock = SYSTEM_CLOCK,
    stop: StopControl | None = None,
    ctx: zmq.asyncio.Context | None = None,
) -> Exit:
    from exchange.client import AlphaClient
    from exchange.stream import StreamConnected, StreamDisconnected, UserStream

    tuning = spec.tuning
    stop = stop or StopControl(clock)
    if spec.settings:
        stop.grace_seconds = spec.settings[0].stop_grace_seconds
    own_ctx = ctx is None
    ctx = ctx or zmq.asyncio.Context()
    link = SupervisorLink(
        ctx,
        spec.events_endpoint,
        spec.user_id,
        stop,
        restarts=spec.restarts,
        clock=clock,
        tuning=tuning,
    )
    await link.start()
    phases = PhaseMachine(
        lambda p, sid, r: link.send(
            m.PhaseChanged(user_id=spec.user_id, phase=p.value, strategy_id=sid, reason=r)
        )
    )
    t0 = clock.monotonic()
    summaries: list[m.StrategySummary] = []
    leftovers: list[m.Leftover] = []
    code, reason = Exit.OK, "done"
    journal: Journal | None = None
    client = None
    stream = None
    tasks: list[asyncio.Task] = []
    session: Session | None = None
    cleanup = True
    lock_fd: int | None = None

    try:
        problems = spec.credentials.problems()
        if problems:
            raise BadSetup("credentials unusable: " + "; ".join(problems))
        if not spec.settings:
            raise BadSetup("no strategy for this user")
        lock_fd = lock_user(spec.journal_path)
        journal = Journal(spec.journal_path)
        client = AlphaClient(
            base_url=spec.exchange.base_url,
            credentials=spec.credentials,
            request_timeout=spec.exchange.request_timeout_seconds,
            clock=clock,
            max_get_retries=0,  # Session.call is the one retry policy
        )
        tracker = OrderTracker()
        session = Session(
            user_id=spec.user_id,
            client=client,
            journal=journal,
            tracker=tracker,
            stop=stop,
            emit=link.send,
            clock=clock,
            tuning=tuning,
            settings=spec.settings[0],
        )
        sess = session
        sess.request_timeout = spec.exchange.request_timeout_seconds
        sess.pending_settings = lambda: link.pending_settings

        def _order_update(st: OrderState) -> None:
            if st.order_id in sess.in_flight:
                link.send(
                    m.OrderUpdate(
                        user_id=spec.user_id,
                        strategy_id=phases.strategy_id,
                        order_id=st.order_id,
                        symbol=st.symbol,
                        side=st.side,
                        status=st.status,
                        filled_qty=st.cum_qty,
                        filled_quote=st.cum_quote,
                    )
                )

        tracker.add_listener(_order_update)
        tracker.add_fill_listener(sess.observe_fill)
        stream = UserStream(
            client,
            ws_url=spec.exchange.ws_url,
            clock=clock,
            rotate_seconds=tuning.stream_rotate_seconds,
            initial_backoff=tuning.stream_initial_backoff,
            max_backoff=tuning.stream_max_backoff,
        )

        async def _reconcile_in_flight() -> None:
            with contextlib.suppress(Exception):
                await sess.refresh_orders()

        async def on_event(ev: object) -> None:
            if isinstance(ev, StreamConnected):
                sess.stream_epoch += 1
                sess.stream_up.set()
                tasks.append(asyncio.get_running_loop().create_task(_reconcile_in_flight()))
            elif isinstance(ev, StreamDisconnected):
                sess.stream_epoch += 1
                sess.stream_up.clear()
                log.warning("stream_down", reason=ev.reason)
            else:
                await tracker.apply_report(ev)

        stream_task = asyncio.get_running_loop().create_task(stream.run(on_event))
        body = asyncio.get_running_loop().create_task(_body(spec, sess, phases, summaries, link))
        stop_watch = asyncio.get_running_loop().create_task(_watch_stop(stop, phases))
        tasks += [stream_task, stop_watch]
        done, _ = await asyncio.wait({body, stream_task}, return_when=asyncio.FIRST_COMPLETED)
        if body not in done:  # the stream died for good (session expired, risk ...)
            body.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await body
            stream_task.result()  # raises what killed it
            raise UserStop("user stream ended")
        body.result()
        if stop.requested:
            reason = stop.reason or "stopped"
        else:
            reason = "target reached"
    except SessionExpired:
        code, reason, cleanup = (
            Exit.SESSION_EXPIRED,
            "session expired: log in again and store a fresh copied request",
            False,
        )
    except RiskChallenge:
        code, reason, cleanup = (
            Exit.RISK_CHALLENGE,
            "the exchange asks for a verification (risk challenge): not retrying",
            False,
        )
    except LeftoverError as exc:
        code, reason = Exit.LEFTOVER, exc.reason
        leftovers.append(m.Leftover(asset=exc.asset, token=exc.token, quantity=exc.quantity))
        if phases.can(Phase.PAUSED):
            phases.to(Phase.PAUSED, exc.reason)
    except UserStop as exc:
        code, reason = exc.exit, exc.reason
    except JournalBusy as exc:  # a previous process of this user is still finishing
        code, reason, cleanup = Exit.CRASH, str(exc), False
    except OrderRejected as exc:  # order maths refused the settings (amount too small ...)
        code, reason = Exit.BAD_CONFIG, f"order refused: {exc}"
    except Exception as exc:
        log.exception("user_process_error", error=type(exc).__name__)
        code, reason = Exit.CRASH, f"unexpected error: {type(exc).__name__}: {exc}"
    if stop.exit is not None and code == Exit.OK:
        code = stop.exit
        reason = stop.reason or reason
    if code not in (Exit.OK,):
        link.send(
            m.ErrorReport(
                user_id=spec.user_id,
                kind=code.name.lower(),
                message=reason,
                fatal=code.fatal,
                strategy_id=phases.strategy_id,
            )
        )
    open_count = 0
    if session is not None:
        if cleanup and session.in_flight and tuning.cancel_on_exit:
            await _cancel_in_flight(session)
        if cleanup and tuning.cancel_on_exit and journal is not None and journal.open_trades():
            await _finish_on_exit(session)
        open_count = sum(
            1 for oid in session.in_flight if (st := session.tracker.get(oid)) and st.open
        )
        unfinished = journal.open_trades() if journal is not None else []
        ours = cleanup or code in (Exit.SESSION_EXPIRED, Exit.RISK_CHALLENGE)
        if unfinished and ours:
            # never end quietly with tokens or orders we cannot account for: say so loudly
            held = _bought_not_sold(session, unfinished)
            leftovers.extend(held)
            if cleanup:
                code = Exit.LEFTOVER
            what = ", ".join(f"{lo.quantity} {lo.token}" for lo in held) or "unknown amounts"
            reason = (
                f"{reason}; {len(unfinished)} round trip(s) could not be finished before exit"
                f" (bought and not sold: {what}); the next start reconciles them"
            )
            link.send(
                m.ErrorReport(
                    user_id=spec.user_id,
                    kind="leftover",
                    message=reason,
                    fatal=True,
                    strategy_id=phases.strategy_id,
                )
            )
    stop.cancel_timers()
    for t in tasks:
        t.cancel()
    if stream is not None:
        with contextlib.suppress(Exception):
            await stream.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    cost_today = Decimal(0)
    if journal is not None:
        cost_today = journal.cost_on(clock.utc_day().isoformat())
    if phases.can(Phase.DONE):
        phases.to(Phase.DONE, reason)
    log.info("user_process_exit", exit=code.name, reason=reason)
    link.send(
        m.Summary(
            user_id=spec.user_id,
            exit_code=int(code),
            reason=reason,
            strategies=summaries,
            open_orders=open_count,
            leftovers=leftovers,
            cost_today=cost_today,
            seconds=clock.monotonic() - t0,
        )
    )
    await link.close()
    if client is not None:
        with contextlib.suppress(Exception):
            await client.close()
    if journal is not None:
        journal.close()
    if lock_fd is not None:
        os.close(lock_fd)
    if own_ctx:
        ctx.term()
    return code


async def _body(
    spec: UserSpec,
    s: Session,
    phases: PhaseMachine,
    summaries: list[m.StrategySummary],
    link: SupervisorLink,
) -> None:
    tu = s.tuning
    await _wait_first(s.stream_up, s.stop.any_event, tu.stream_connect_timeout)
    if not s.stream_up.is_set():
        if s.stop.requested:
            return
        raise ExchangeDown("user stream could not be connected")
    phases.to(Phase.RECONCILING)
    await reconcile(s, {})
    settings = list(spec.settings)
    idx = 0
    while idx < len(settings):
        if link.pending_settings is not None:  # UpdateSettings: from the next strategy/batch
            settings = settings_from_update(link.pending_settings)
            link.pending_settings = None
            if idx >= len(settings):
                break
        st = settings[idx]
        s.settings = st
        s.stop.grace_seconds = st.stop_grace_seconds
        runner = StrategyRunner(s, phases, st)
        summaries.append(runner.summary)
        await runner.run()
        if s.stop.requested:
            return
        idx += 1


async def _wait_first(a: asyncio.Event, b: asyncio.Event, within: float) -> None:
    ta = asyncio.ensure_future(a.wait())
    tb = asyncio.ensure_future(b.wait())
    try:
        await asyncio.wait({ta, tb}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ta.cancel()
        tb.cancel()


async def _watch_stop(stop: StopControl, phases: PhaseMachine) -> None:
    await stop.any_event.wait()
    _stop_phase(phases, stop)
    await stop.now_event.wait()
    _stop_phase(phases, stop)


FINISH_ON_EXIT_SECONDS = 15.0  # well inside the supervisor's hard-kill limit


async def _finish_on_exit(s: Session) -> None:
    """A stop (or an error) cut a round trip short and its orders were just cancelled:
    finish it now, as a restart would (``recovery.reconcile``: fills read back, tokens
    sold), so its tokens are sold in this run. Bounded in time; what is left stays in the
    journal, and the caller reports it."""
    try:
        await asyncio.wait_for(reconcile(s, {}), FINISH_ON_EXIT_SECONDS)
    except Exception as exc:  # whatever it was: the caller reports what is left
        log.warning("finish_on_exit_failed", error=type(exc).__name__, detail=str(exc))


def _bought_not_sold(s: Session, rows: list) -> list[m.Leftover]:
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
    """Best effort on the way out after an error: leave no open order behind if the
    exchange can be reached (else the journal holds them for the next start)."""
    for oid in list(s.in_flight):
        st = s.tracker.get(oid)
        if st is None or st.terminal or st.status == "PENDING":
            continue
        with contextlib.suppress(Exception):
            await s.client.cancel(oid, st.symbol)
    with contextlib.suppress(Exception):
        await s.refresh_orders()
