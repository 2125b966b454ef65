"""Typed failures of the Binance Alpha client.

Callers decide what to do from the *type* alone: a user whose session expired or who hit
a risk challenge must stop at once (retrying escalates the account's risk controls); a
rate limit says how long to wait; an ``OutcomeUnknown`` after an order POST means the
order may exist and must be looked up before anything is re-sent.

Messages name the endpoint, the exchange's code and its message, never a cookie or header
value: exception text ends up in logs and status lines.
"""

from __future__ import annotations

from typing import Any


class ExchangeError(Exception):
    """Anything the exchange (or the way to it) did wrong.

    ``code`` is the exchange's envelope code (e.g. ``"100002001"``) when it gave one,
    ``http_status`` the HTTP status when there was a response, ``endpoint`` the path called.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.http_status = http_status
        self.endpoint = endpoint
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.http_status is not None:
            parts.append(f"http={self.http_status}")
        if self.endpoint:
            parts.append(f"endpoint={self.endpoint}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class SessionExpired(ExchangeError):
    """The browser session is no longer valid (code 100002001, HTTP 401/403).

    The user has to log in again and give us a fresh copied request; never retry.
    """


class RiskChallenge(ExchangeError):
    """The exchange asks for a human verification (``risk_challenge_*`` headers, code
    100001003, messages about verification). Stop this user and never retry.

    On an order-placing POST the challenge can come on a reply that ALSO placed the order
    (headers on a successful envelope carrying ids). Then ``placed`` holds what the exchange
    accepted (``OtoPlaced`` from ``place_oto``, the order id ``str`` from ``place_limit``)
    and ``may_exist`` is True: adopt that order (finish or cancel-and-sell its round trip)
    before stopping. ``may_exist`` without ``placed`` means the reply did not say clearly
    (no ids, unreadable ids): look the order up. Both stay ``None`` / False when the reply
    was a plain refusal (``success: false``) or not an order request.
    """

    placed: object | None = None
    may_exist: bool = False
    _reply_data: Any = None  # the accepted reply's data (bytes or msgspec.Raw), for the client only


class RateLimited(ExchangeError):
    """HTTP 429/418. ``retry_after`` is the number of seconds the exchange asked us to wait
    (from ``Retry-After``; a default when it gave none)."""

    def __init__(self, message: str, *, retry_after: float, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{super().__str__()} retry_after={self.retry_after:g}s"


class OrderRejected(ExchangeError):
    """The exchange refused an order (balance, filters, too many open orders ...). The
    order does not exist; it is safe to change something and place another.

    ``code`` and ``message`` are the exchange's own (HTTP 200, ``success: false``);
    ``meaning`` says what a known code means (None for codes we have not seen). The
    subclasses let callers act by kind; a plain ``OrderRejected`` is a refusal we cannot
    classify."""

    meaning: str | None = None


class InsufficientBalance(OrderRejected):
    """The account cannot pay: USDT for a BUY, the token for a SELL (real code 481020,
    "余额不足，下单失败。"). Placing again cannot help until money arrives: stop the user."""


class OrderParametersRejected(OrderRejected):
    """The exchange says our price/amount maths or the symbol's filters are wrong: a price
    off the tick or a quantity off the lot step (481002, "incorrect price or amount"), a
    payment amount that is not price x quantity truncated to 8 decimals (000002), a SELL
    under the 0.1 USDT minimum (481013). Retrying the same order cannot help: stop that
    strategy for that user and say the maths or filters are wrong."""


class OrderNotOpen(ExchangeError):
    """A cancel found no open order with that id: it was already filled, cancelled or never
    existed. Not a failure of the cancel itself; the caller asks REST what became of it."""


class TransportError(ExchangeError):
    """No usable answer: connection refused/reset, timeouts or 5xx on idempotent calls
    after the retries ran out."""


class ProxyFailed(TransportError):
    """The user's proxy (``user_overrides[].proxy``) did not carry the request: it could
    not be reached, refused the username or password, or could not reach the exchange.
    Nothing was sent to the exchange. The message names the proxy with its password
    masked (``socks5://user:***@host:port``)."""


class ProxyLoginRefused(ProxyFailed):
    """The user's proxy refused the username or password (HTTP 407, a SOCKS5 login
    refused, or no login method it accepts): the operator's mistake in
    ``user_overrides[].proxy``. Asking again cannot help; never retried."""


class OutcomeUnknown(ExchangeError):
    """An order-placing POST timed out, lost its connection, got a 5xx or an unreadable
    reply: the order MAY have been placed. Look it up (open orders / history) before
    placing anything else."""


class BadResponse(ExchangeError):
    """A reply we could not parse; the message names the endpoint and what was wrong."""


class UnknownToken(ExchangeError, LookupError):
    """The token list has no token with that symbol or alphaId."""
