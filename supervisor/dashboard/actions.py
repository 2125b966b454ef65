"""What the dashboard can do, through the same control commands as the CLI.

drain / stop now / start a user or a strategy, and reload the config, are the
``StopRequest``, ``StartRequest`` and ``ReloadRequest`` of ``alphavol stop|start|reload``,
handled by ``supervisor.commands`` exactly as from the control socket. Refreshing a
session is ``alphavol users add``: the same parser and checks (``config.curl``), stored in
the same store; a user FATAL because its session expired is then started again. None of
these can place an order: they only move users between states.

Each action is logged (``dashboard_action``) with who asked, what, and the answer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from config.curl import CurlParseError, parse_curl
from config.logsetup import add_secrets, redact
from protocol import messages as m
from supervisor.control import handle
from supervisor.states import State

if TYPE_CHECKING:
    from exchange.auth import Credentials
    from supervisor.arbiter import Arbiter

log = structlog.get_logger(__name__)

CONTROL = ("drain", "stop_now", "start", "reload")


@dataclass
class Outcome:
    status: int  # HTTP status of the answer
    message: str

    @property
    def ok(self) -> bool:
        return self.status == 200


def _request(action: str, strategy_id: str | None, user_id: str | None) -> m.Request:
    if action == "reload":
        return m.ReloadRequest()
    if action == "start":
        return m.StartRequest(strategy_id=strategy_id, user_id=user_id)
    return m.StopRequest(strategy_id=strategy_id, user_id=user_id, now=action == "stop_now")


def unknown_target(arb: Arbiter, strategy_id: str | None, user_id: str | None) -> str | None:
    if user_id is not None and user_id not in arb.records:
        return f"no user {user_id!r} in the config"
    known = {s.strategy_id for s in arb.config.strategies}
    if strategy_id is not None and strategy_id not in known:
        return f"no strategy {strategy_id!r} in the config"
    return None


def control(
    arb: Arbiter, who: str, action: str, strategy_id: str | None, user_id: str | None
) -> Outcome:
    if action not in CONTROL:
        out = Outcome(404, f"no action {action!r} (actions: {', '.join(CONTROL)})")
    elif problem := unknown_target(arb, strategy_id, user_id):
        out = Outcome(404, problem)
    else:
        reply = handle(arb, _request(action, strategy_id, user_id))
        text = getattr(reply, "message", "") or "ok"
        out = Outcome(409 if isinstance(reply, m.ErrorReply) else 200, text)
    _logged(who, action, out, strategy_id=strategy_id, user_id=user_id)
    return out


async def refresh_session(arb: Arbiter, who: str, user_id: str, curl_text: str) -> Outcome:
    """Store the session of a "Copy as cURL" for ``user_id``; start it again when it was
    FATAL for an expired session."""
    if user_id not in arb.records:
        out = Outcome(404, f"no user {user_id!r} in the config; nothing stored")
    else:
        try:
            creds = parse_curl(curl_text)
        except CurlParseError as exc:
            out = Outcome(400, f"the cURL text for user {user_id} cannot be used: {exc}")
        else:
            out = await _store(arb, user_id, creds)
    _logged(who, "refresh_session", out, user_id=user_id)
    return out


async def _store(arb: Arbiter, user_id: str, creds: Credentials) -> Outcome:
    add_secrets(creds.secret_values())
    store = arb.sessions.store
    assert store is not None  # Sessions.check opened it before anything was served
    try:
        await asyncio.to_thread(store.put, user_id, creds)
    except Exception as exc:  # CredentialsError: the store's own words, never a value
        return Outcome(500, f"the session of user {user_id} was not stored: {redact(str(exc))}")
    arb.sessions.stored(user_id, arb.clock.time())
    message = f"stored a fresh session for user {user_id}"
    rec = arb.records[user_id]
    if rec.state == State.FATAL and arb.observer.needs.get(user_id) == "session_expired":
        reply = handle(arb, m.StartRequest(user_id=user_id))
        message += "; " + (getattr(reply, "message", "") or "started")
        if isinstance(reply, m.OkReply):
            arb.observer.needs.pop(user_id, None)
    return Outcome(200, message)


def _logged(who: str, action: str, out: Outcome, **target: str | None) -> None:
    log.info(
        "dashboard_action",
        who=who,
        action=action,
        **{k: v for k, v in target.items() if v is not None},
        ok=out.ok,
        answer=redact(out.message),
    )
