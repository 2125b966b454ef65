"""Turning an HTTP reply into data or a typed error.

One function decides, from the status, the headers and the bapi envelope, which of the
``exchange.errors`` a reply means. It is kept apart from the client so the rules can be
read (and tested) in one place.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from exchange.errors import (
    BadResponse,
    ExchangeError,
    InsufficientBalance,
    OrderNotOpen,
    OrderParametersRejected,
    OrderRejected,
    RateLimited,
    RiskChallenge,
    SessionExpired,
)
from exchange.models import Envelope
from exchange.untrusted import endpoint_name, tolerant_json

SESSION_EXPIRED_CODES = frozenset({"100002001"})
RISK_CODES = frozenset({"100001003"})
RISK_HEADERS = ("risk_challenge_biz_no", "risk_challenge_enable_flow")
RISK_WORDS = ("verif", "验证", "risk control", "风控", "security check", "captcha")
SESSION_WORDS = ("log in again", "login again", "please log in", "重新登录", "登录状态")
NOT_OPEN_WORDS = (
    "not exist",
    "unknown order",
    "not found",
    "不存在",
    "already filled",
    "already canceled",
    "already cancelled",
    "has been filled",
    "has been canceled",
    "has been cancelled",
    "order status",
    "not open",
)
DEFAULT_RETRY_AFTER = 5.0

INSUFFICIENT_BALANCE = "481020"
INCORRECT_PRICE_OR_AMOUNT = "481002"
PAYMENT_AMOUNT_MISMATCH = "000002"
BELOW_MINIMUM = "481013"
REJECTIONS: dict[str, tuple[type[OrderRejected], str]] = {
    INSUFFICIENT_BALANCE: (InsufficientBalance, "insufficient balance"),
    INCORRECT_PRICE_OR_AMOUNT: (
        OrderParametersRejected,
        "incorrect price or amount (a price off the tick or a quantity off the lot step)",
    ),
    PAYMENT_AMOUNT_MISMATCH: (
        OrderParametersRejected,
        "payment amount is not price x quantity truncated to 8 decimals",
    ),
    BELOW_MINIMUM: (OrderParametersRejected, "order value below the minimum (0.1 USDT)"),
}
"""Order refusals seen from the real exchange (DESIGN.md section 3): class and meaning."""
BALANCE_WORDS = ("余额不足", "insufficient balance", "insufficient funds")

_envelope = msgspec.json.Decoder(Envelope)


def has_risk_headers(headers: Mapping[str, str]) -> bool:
    """Present at all (even empty) counts: a false alarm stops a user, a miss escalates."""
    return any(h in headers for h in RISK_HEADERS)


def retry_after_seconds(headers: Mapping[str, str]) -> float:
    """``Retry-After`` in seconds (only the numeric form is used; default otherwise)."""
    raw = headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER


def status_error(status: int, headers: Mapping[str, str], endpoint: str) -> ExchangeError | None:
    """The error an HTTP status means on its own (before looking at the body), or None."""
    if has_risk_headers(headers):
        return RiskChallenge("risk challenge requested", http_status=status, endpoint=endpoint)
    if status in (401, 403):
        return SessionExpired(
            "session rejected; log in again", http_status=status, endpoint=endpoint
        )
    if status in (429, 418):
        return RateLimited(
            "rate limited",
            retry_after=retry_after_seconds(headers),
            http_status=status,
            endpoint=endpoint,
        )
    return None


def parse_envelope(body: bytes, status: int, endpoint: str) -> Envelope:
    """The bapi envelope of a reply. A body that is JSON but for bare ``NaN`` /
    ``Infinity`` tokens is read with those as strings, so the number check of the data
    names the field; anything else unreadable is ``BadResponse``."""
    try:
        return _envelope.decode(body)
    except msgspec.DecodeError as exc:
        fixed = tolerant_json(body)
        problem: Exception = exc
        if fixed is not None:
            try:
                return _envelope.decode(fixed)
            except (msgspec.ValidationError, msgspec.DecodeError) as again:
                problem = again
    except msgspec.ValidationError as exc:
        problem = exc
    raise BadResponse(
        f"{endpoint_name(endpoint)}: reply is not a bapi envelope ({problem})",
        http_status=status,
        endpoint=endpoint,
    ) from None


def envelope_error(
    env: Envelope, status: int, endpoint: str, *, kind: str = "read"
) -> ExchangeError:
    """The typed error of an envelope with ``success: false``.

    ``kind`` is ``"order"`` for order-placing POSTs (a refusal is ``OrderRejected``),
    ``"cancel"`` for cancels (an "order does not exist / already filled" answer is
    ``OrderNotOpen``), ``"read"`` otherwise.
    """
    code = env.code_str
    message = env.text or "exchange refused the request"
    low = message.lower()
    cls: type[ExchangeError] = ExchangeError
    if code in SESSION_EXPIRED_CODES or any(w in low for w in SESSION_WORDS):
        cls = SessionExpired
    elif code in RISK_CODES or any(w in low for w in RISK_WORDS):
        cls = RiskChallenge
    elif kind == "cancel" and any(w in low for w in NOT_OPEN_WORDS):
        cls = OrderNotOpen
    elif kind == "order":
        return order_rejected(code, env.text, status, endpoint)
    return cls(message, code=code, http_status=status, endpoint=endpoint)


def order_rejected(
    code: str | None, text: str | None, status: int | None, endpoint: str
) -> OrderRejected:
    """The ``OrderRejected`` (subclass by code, or by words for a balance problem) of a
    refused order, with the exchange's code and its own message (else what the code
    means)."""
    cls, meaning = REJECTIONS.get(code or "", (OrderRejected, None))
    if cls is OrderRejected and text and any(w in text.lower() for w in BALANCE_WORDS):
        cls, meaning = REJECTIONS[INSUFFICIENT_BALANCE]
    err = cls(
        text or meaning or "exchange refused the order",
        code=code,
        http_status=status,
        endpoint=endpoint,
    )
    err.meaning = meaning
    return err
