"""Reload (SIGHUP without a terminal to lose, ``alphavol reload``): reread the config and
either refuse it, with every reason, changing nothing, or apply it.

The steps: read the file off the event loop (``config.reader``: a FIFO or a file over
1 MiB is refused at once, a parse that takes too long is killed; a ``ConfigError`` lists
every issue, one per line); refuse what
a running supervisor cannot take (``reload_plan.refusals``) and users without a stored
session; plan the changes (``reload_plan.plan_reload``, a pure function); apply the plan
to the users (``Fleet.apply_reload``) and check the volumes of the ones with new work.
A refusal is logged at error level with its reasons.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from config.errors import ConfigError
from config.reader import read_config_off_loop
from supervisor.errors import SupervisorError
from supervisor.reload_plan import plan_reload, refusals, settings_by_user

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter

log = structlog.get_logger(__name__)


async def reload(arb: Arbiter) -> list[str] | None:
    """Returns why the new config was refused (the old one keeps running), or None.

    One reload at a time. Requests that come while one runs share the next one (it
    rereads the file once the running one is done), so however often a client asks, at
    most two readers run one after the other."""
    waiting = arb.reload_next
    if waiting is not None:  # the next reload has not begun: its answer is ours too
        return await asyncio.shield(waiting)
    mine: asyncio.Future[list[str] | None] = asyncio.get_running_loop().create_future()
    arb.reload_next = mine
    try:
        async with arb.reload_lock:
            arb.reload_next = None  # begun: a request from now on rereads after this one
            errors = await _reload_now(arb)
        mine.set_result(errors)
    finally:
        if arb.reload_next is mine:
            arb.reload_next = None
        if not mine.done():
            mine.cancel()  # the supervisor is closing: those sharing it end too
    return errors


async def _reload_now(arb: Arbiter) -> list[str] | None:
    arb.notifier.reloading()
    try:
        errors = await _reload(arb)
    finally:
        arb.notifier.ready(arb.status_line())
    if errors:
        log.error("reload_refused", errors=errors)
    arb.observer.reloaded(errors)
    return errors


async def _reload(arb: Arbiter) -> list[str] | None:
    if arb.stopping:
        return ["the supervisor is stopping"]
    try:  # checked at once; read and parsed in a process of its own, with a deadline
        new = await read_config_off_loop(arb.config.source)
    except ConfigError as exc:  # lists every issue, one per line
        return str(exc).splitlines() or [type(exc).__name__]
    if arb.stopping:
        return ["the supervisor is stopping"]
    only = getattr(arb.config, "only", None)  # `run --strategy` holds across reloads
    gone = [sid for sid in only or () if sid not in {s.strategy_id for s in new.strategies}]
    errors = refusals(arb.config, new) + [
        f"strategy {sid!r} (run --strategy) is no longer in the config" for sid in gone
    ]
    if errors:
        return errors
    if only:
        new = new.selecting(only)
    try:
        if arb.pool is None:  # a pool node reads a session when it claims the user
            arb.sessions.check(new)
    except SupervisorError as exc:
        return [str(exc)]
    plan = plan_reload(arb.fleet.settings_now(), settings_by_user(new))
    arb.config = new
    to_check = arb.fleet.apply_reload(plan)
    log.info(
        "config_reloaded",
        users=len(arb.fleet.records),
        added=list(plan.added),
        removed=plan.removed,
        changed=list(plan.changed),
    )
    if to_check:
        arb.tasks.start(arb.fleet.check(to_check), "volumes")
    arb.wake()
    return None
