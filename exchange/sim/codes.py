"""Error envelopes the sim answers with.

``100002001`` (session expired) and ``100001003`` (risk challenge) are the real codes seen
in traffic, and so are the order refusals of DESIGN.md section 3 (real replies in
``tests/data/binance-alpha/samples/error_*``): ``481020`` insufficient balance, ``481002``
a price off the tick or a quantity off the lot step (its ``messageDetail`` is an object),
``000002`` a payment amount that is not price x quantity truncated to 8 decimals (also
bapi's generic "illegal parameter"), ``481013`` a SELL under the minimum (the code is from
peer code; no payload is public, so its message is ours). Other refusals (price or
quantity out of range, too many orders, unknown symbol) are not documented publicly: they
are shaped like bapi codes with Binance's spot "Filter failure" wording, and the client
must treat any non-success envelope on an order as a rejection, whatever the code.
"""

from __future__ import annotations

import uuid
from typing import Any


class SimError(Exception):
    """An answer of ``success: false`` (HTTP 200 unless ``http_status`` says otherwise)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int = 200,
        headers: dict[str, str] | None = None,
        bare: bool = False,
        detail: Any = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.headers = headers or {}
        self.bare = bare  # the real session-expired body has only code/message/success
        self.detail = detail  # messageDetail: null, or an object (481002)

    def body(self) -> dict:
        if self.bare:
            return {"code": self.code, "message": self.message, "success": False}
        return {
            "code": self.code,
            "message": self.message,
            "messageDetail": self.detail,
            "data": None,
            "success": False,
        }


SESSION_EXPIRED = "100002001"
RISK_CHALLENGE = "100001003"
ILLEGAL_PARAMETER = "000002"  # also the real "payment amount mismatch" refusal
INSUFFICIENT_BALANCE = "481020"
INCORRECT_PRICE_OR_AMOUNT = "481002"
BELOW_MINIMUM = "481013"
FILTER_FAILURE = "345101"
TOO_MANY_ORDERS = "345102"
UNKNOWN_ORDER = "345201"
ORDER_NOT_OPEN = "345202"
UNKNOWN_SYMBOL = "345001"


def session_expired(http_status: int = 200) -> SimError:
    return SimError(
        SESSION_EXPIRED, "登录状态已经失效，请重新登录！", bare=True, http_status=http_status
    )


def risk_headers() -> dict[str, str]:
    return {"risk_challenge_biz_no": uuid.uuid4().hex, "risk_challenge_enable_flow": "true"}


def risk_challenge() -> SimError:
    return SimError(
        RISK_CHALLENGE,
        "For the security of your account, please complete the verification first.",
        headers=risk_headers(),
    )


def bad_param(what: str) -> SimError:
    return SimError(ILLEGAL_PARAMETER, f"illegal parameter: {what}")


def filter_failure(name: str, detail: str = "") -> SimError:
    msg = f"Filter failure: {name}"
    return SimError(FILTER_FAILURE, f"{msg} ({detail})" if detail else msg)


def insufficient_balance() -> SimError:
    return SimError(INSUFFICIENT_BALANCE, "余额不足，下单失败。")


_DETAIL_KEYS = ("title", "type", "icon", "action", "linkTitle", "linkUrl")


def incorrect_price_or_amount() -> SimError:
    """The real 481002 reply, ``messageDetail`` object and all."""
    return SimError(
        INCORRECT_PRICE_OR_AMOUNT,
        "Unable to place order due to incorrect price or amount.",
        detail=dict.fromkeys(_DETAIL_KEYS),
    )


def payment_amount_mismatch() -> SimError:
    return SimError(
        ILLEGAL_PARAMETER, "price*quantity must be the same as sum(paymentDetail.amount)"
    )


def below_minimum(minimum: Any) -> SimError:
    return SimError(BELOW_MINIMUM, f"Order value is below the minimum of {minimum} USDT.")
