"""``stop --user`` and ``start --user`` on a node of a pool (issue 22), for a user this
node does not run: sent through the store, without waiting for it (the control socket
answers at once; the store call runs as a task of the supervisor and logs its outcome).

* stop: a command to the node holding the user's lease (carried out at its next tick),
  or, when no node holds it, the user is marked stopped for the day so none claims it.
* start: the user's day is opened again; the first node with room claims and checks it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import psycopg
import structlog

from protocol import messages as m
from supervisor.states import TERMINAL

if TYPE_CHECKING:
    from supervisor.pool.node import Pool

log = structlog.get_logger(__name__)


def stop_elsewhere(pool: Pool, req: m.StopRequest) -> m.Reply:
    uid = req.user_id
    assert uid is not None
    if pool.store.conn is None:
        return m.ErrorReply(message=f"the store is unreachable: user {uid} not stopped")

    async def send() -> Any:
        node = await pool.store.stop_user(uid, req.strategy_id, req.now, pool.arb.day)
        return node or "nobody: marked stopped for the day"

    _through_store(pool, "stop", uid, send)
    return m.OkReply(message=f"stop of user {uid} sent through the store to its node")


def start_anywhere(pool: Pool, req: m.StartRequest) -> m.Reply:
    uid = req.user_id
    assert uid is not None
    rec = pool.arb.fleet.records.get(uid)
    if rec is not None and rec.state not in TERMINAL:
        return m.ErrorReply(message=f"user {uid} is not stopped or finished")
    if pool.store.conn is None:
        return m.ErrorReply(message=f"the store is unreachable: user {uid} not started")
    if rec is not None:  # the node that claims it makes a fresh record
        del pool.arb.fleet.records[uid]

    async def send() -> Any:
        await pool.store.start_user(uid)
        return "any node"

    _through_store(pool, "start", uid, send)
    return m.OkReply(message=f"queued in the pool: a node with room will run user {uid}")


def _through_store(pool: Pool, action: str, uid: str, call: Callable[[], Awaitable[Any]]) -> None:
    async def run() -> None:
        try:
            to = await call()
            log.info("pool_command_sent", action=action, user_id=uid, to=to)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            from config.pgstore import describe_error

            error = describe_error(pool.settings, exc)
            log.warning("pool_command_failed", action=action, user_id=uid, error=error)

    pool.arb.tasks.start(run(), f"{action} of user {uid} through the store")
