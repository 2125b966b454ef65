"""Error envelopes the sim answers with.

``100002001`` (session expired) and ``100001003`` (risk challenge) are the real codes seen
in traffic. Order rejections on the Alpha web API are not documented publicly, so those
codes are shaped like bapi codes and carry Binance's spot "Filter failure" wording: the
client must treat any non-success envelope on an order as a rejection, whatever the code.
"""

from __future__ import annotations

import uuid


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
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.headers = headers or {}
        self.bare = bare  # the real session-expired body has only code/message/success

    def body(self) -> dict:
        if self.bare:
            return {"code": self.code, "message": self.message, "success": False}
        return {
            "code": self.code,
            "message": self.message,
            "messageDetail": None,
            "data": None,
            "success": False,
        }


SESSION_EXPIRED = "100002001"
RISK_CHALLENGE = "100001003"
ILLEGAL_PARAMETER = "000002"
INSUFFICIENT_BALANCE = "345124"
FILTER_FAILURE = "345101"
TOO_MANY_ORDERS = "345102"
UNKNOWN_ORDER = "345201"
ORDER_NOT_OPEN = "345202"
UNKNOWN_SYMBOL = "345001"


def session_expired(http_status: int = 200) -> SimError:
    return SimError(
        SESSION_EXPIRED, "登录状态已经失效，请重新登录！", bare=True, http_status=http_status
    )


def risk_challenge() -> SimError:
    return SimError(
        RISK_CHALLENGE,
        "For the security of your account, please complete the verification first.",
        headers={
            "risk_challenge_biz_no": uuid.uuid4().hex,
            "risk_challenge_enable_flow": "true",
        },
    )


def bad_param(what: str) -> SimError:
    return SimError(ILLEGAL_PARAMETER, f"illegal parameter: {what}")


def filter_failure(name: str, detail: str = "") -> SimError:
    msg = f"Filter failure: {name}"
    return SimError(FILTER_FAILURE, f"{msg} ({detail})" if detail else msg)


def insufficient_balance() -> SimError:
    return SimError(INSUFFICIENT_BALANCE, "Account has insufficient balance for requested action.")
