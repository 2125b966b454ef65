"""Who may use the dashboard: the token, browser sessions, CSRF, and slowing guessers.

* The token (``dashboard.token_file``) is compared in constant time (``hmac``). Scripts
  send it as ``Authorization: Bearer TOKEN``; a browser posts it once to ``/login`` and
  gets a session cookie (random, HttpOnly, SameSite=Strict, Secure over TLS).
* Every state-changing request of a browser session carries that session's CSRF token in
  the ``X-CSRF-Token`` header (the login form: a hidden field matching a pre-login
  cookie). A token of another or an ended session is refused (403).
* Wrong tokens are counted per client address: from the ``FREE_FAILURES``-th on, that
  address is refused (429, ``Retry-After``) for 1, 2, 4 ... up to 300 seconds, even with
  the right token; the count is forgotten after ``FORGET_SECONDS`` without a failure.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field

SESSION_COOKIE = "alphavol_session"
LOGIN_COOKIE = "alphavol_login"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 64
FREE_FAILURES = 5
MAX_LOCK_SECONDS = 300.0
FORGET_SECONDS = 900.0


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two secrets (False when either is missing)."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass
class Session:
    number: int  # how the log names it (never the cookie)
    csrf: str
    started: float


@dataclass
class Guesses:
    failures: int = 0
    last: float = 0.0
    locked_until: float = 0.0


@dataclass
class Auth:
    token: str
    monotonic: object = time.monotonic
    sessions: dict[str, Session] = field(default_factory=dict)
    guesses: dict[str, Guesses] = field(default_factory=dict)
    opened: int = 0

    def _now(self) -> float:
        return self.monotonic()  # type: ignore[operator]

    # ------------------------------------------------------------ wrong tokens
    def locked(self, address: str) -> float:
        """Seconds this address must wait before trying a token again (0: it may)."""
        g = self.guesses.get(address)
        return 0.0 if g is None else max(0.0, g.locked_until - self._now())

    def check_token(self, address: str, given: str | None) -> bool:
        """Whether ``given`` is the token; a wrong one counts against ``address``."""
        now = self._now()
        for addr, g in list(self.guesses.items()):
            if now - g.last > FORGET_SECONDS and g.locked_until <= now:
                del self.guesses[addr]
        if same(given, self.token):
            self.guesses.pop(address, None)
            return True
        g = self.guesses.setdefault(address, Guesses())
        g.failures += 1
        g.last = now
        if g.failures >= FREE_FAILURES:
            lock = min(MAX_LOCK_SECONDS, 2.0 ** (g.failures - FREE_FAILURES))
            g.locked_until = now + lock
        return False

    def new_login_nonce(self) -> str:
        """The login form's CSRF value (also set as a cookie: both must match)."""
        return secrets.token_urlsafe(24)

    # ------------------------------------------------------------ sessions
    def open_session(self) -> tuple[str, Session]:
        now = self._now()
        self._expire(now)
        while len(self.sessions) >= MAX_SESSIONS:  # the oldest gives way
            self.sessions.pop(next(iter(self.sessions)))
        self.opened += 1
        sid = secrets.token_urlsafe(32)
        s = Session(number=self.opened, csrf=secrets.token_urlsafe(32), started=now)
        self.sessions[sid] = s
        return sid, s

    def session(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        self._expire(self._now())
        for known, s in self.sessions.items():
            if same(sid, known):
                return s
        return None

    def close_session(self, sid: str | None) -> None:
        for known in list(self.sessions):
            if same(sid, known):
                del self.sessions[known]

    def _expire(self, now: float) -> None:
        for sid, s in list(self.sessions.items()):
            if now - s.started > SESSION_SECONDS:
                del self.sessions[sid]
