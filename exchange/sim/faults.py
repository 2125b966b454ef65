"""Faults the sim can inject, settable at start (scenario/flags) and at runtime (admin API).

Each knob mirrors a failure seen against the real exchange. ``*_next`` counters make a
fault deterministic for tests ("the next 2 requests fail"); ``*_rate`` knobs are for soak
runs. ``account`` scopes the HTTP faults to one account so a 300-user benchmark can break
one user without touching the others.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

ECHO_CODE = "000001"


@dataclass
class Faults:
    # HTTP (Binance paths only; the admin API is never faulted)
    error_rate: float = 0.0  # fraction of requests answered with ``error_status``
    error_next: int = 0  # the next N requests answer ``error_status``
    error_status: int = 503
    hang_rate: float = 0.0  # fraction of requests that hang ``hang_seconds``
    hang_next: int = 0
    hang_seconds: float = 30.0
    hang_after: bool = False  # hang AFTER handling (an order IS placed, the reply is late)
    hold: bool = False  # matching requests wait (unanswered) until hold is set false again
    rate_limit_rate: float = 0.0  # fraction answered 429 with Retry-After
    rate_limit_next: int = 0
    retry_after: float = 1.0
    rate_limit_status: int = 429
    # every request answers a ``success: false`` envelope whose message echoes its Cookie and
    # csrftoken headers, as a careless gateway might (tests that no CLI output leaks them)
    echo_secrets: bool = False
    paths: list[str] = field(default_factory=list)  # only paths containing one of these
    account: str | None = None  # only this account's requests
    # sessions and risk
    # accounts whose session is dead, or single sessions (their cr00 cookie): a fresh login
    # of the same account (another cr00) works again
    session_expired: list[str] = field(default_factory=list)
    session_expired_http: int = 200  # the real envelope comes with 200; 401/403 also seen
    risk_challenge: list[str] = field(default_factory=list)  # next order of these accounts
    # next order of these accounts is PLACED, but its reply carries the challenge headers
    risk_challenge_accepted: list[str] = field(default_factory=list)
    # matching
    never_fill: bool = False  # no order fills (global)
    never_fill_accounts: list[str] = field(default_factory=list)
    stuck_oto_sells: list[str] = field(default_factory=list)  # these accounts' OTO sells never fill
    partial_fills: int = 0  # >1: every fill is split into this many trades
    # stream
    drop_events: float = 0.0  # fraction of stream events silently dropped
    disconnect_every: float = 0.0  # close every stream connection N seconds after it opens

    def update(self, changes: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        for key, value in changes.items():
            current = getattr(self, key)
            if isinstance(current, list):
                value = [str(v) for v in (value or [])]
            elif isinstance(current, bool):
                value = bool(value)
            elif isinstance(current, int):
                value = int(value)
            elif isinstance(current, float):
                value = float(value)
            elif key == "account":
                value = None if value is None else str(value)
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def http_applies(self, path: str, account: str | None) -> bool:
        if self.account is not None and account != self.account:
            return False
        return not self.paths or any(p in path for p in self.paths)


def echo_secrets_body(headers: Mapping[str, str]) -> dict[str, Any]:
    """The ``echo_secrets`` reply: an error envelope that repeats the session it was sent."""
    sent = {"Cookie": headers.get("Cookie", ""), "csrftoken": headers.get("csrftoken", "")}
    return {
        "code": ECHO_CODE,
        "message": f"Illegal request headers {json.dumps(sent)}; expected {sent['csrftoken']}",
        "messageDetail": None,
        "data": None,
        "success": False,
    }
