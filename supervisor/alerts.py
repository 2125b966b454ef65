"""What a notification says: which user, strategy and token, why in plain words, and
what the owner should do (the README's "When things go wrong", in one message).

Pure functions from what the supervisor knows to ``notify.Message``; ``Outbox.post``
redacts them once more before they leave.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from protocol.exitcodes import Exit
from supervisor.notify import Message, hostname

# exit status of a user process -> the notification event
EXIT_EVENTS = {
    Exit.SESSION_EXPIRED: "session_expired",
    Exit.RISK_CHALLENGE: "risk_challenge",
    Exit.BAD_CONFIG: "bad_setup",
    Exit.LEFTOVER: "leftover",
    Exit.INSUFFICIENT_BALANCE: "insufficient_balance",
    Exit.BAD_REPLY: "bad_reply",
    Exit.PROXY_REFUSED: "proxy_refused",
}

WHAT = {
    "session_expired": "its session expired (logged out, or logged in elsewhere)",
    "risk_challenge": "Binance asks for a verification (risk challenge)",
    "insufficient_balance": "the account has not enough USDT for the next round trip",
    "low_balance": (
        "its balance would end the day under min_balance_usdt, and such a day earns no"
        " volume points: it is not traded today"
    ),
    "leftover": "tokens could not be sold",
    "bad_setup": "a strategy cannot run as configured",
    "bad_reply": "the exchange kept sending figures that cannot be true",
    "proxy_refused": "its proxy refused the username or password",
    "crash_limit": "its process kept crashing",
}

TODO = {
    "session_expired": (
        "log in to binance.com in a browser, copy a request as cURL, then"
        " `alphavol users add {u} --curl FILE` and `alphavol start --user {u}`."
    ),
    "risk_challenge": (
        "log in with a browser and pass the verification Binance asks for, then"
        " `alphavol start --user {u}`. alphavol never retries by itself: retrying"
        " escalates the account's risk controls."
    ),
    "insufficient_balance": (
        "top up USDT (each round trip needs single_trade_amount_usdt), then"
        " `alphavol start --user {u}`."
    ),
    "low_balance": (
        "top up USDT in the Alpha wallet, then `alphavol start --user {u}` (it starts again"
        " by itself the next day, and is checked again then)."
    ),
    "leftover": (
        "sell the tokens listed (in the browser, or let alphavol try again with"
        " `alphavol start --user {u}`); nothing more is bought until then."
    ),
    "bad_setup": (
        "check the strategy's token, chain and amounts (`alphavol check --online`),"
        " fix the config, then `alphavol reload`."
    ),
    "bad_reply": (
        "see `alphavol status` and the log for the endpoint and field; start the user"
        " again when the exchange answers sensibly: `alphavol start --user {u}`."
    ),
    "proxy_refused": (
        "fix the proxy of user {u} (user_overrides[].proxy) in the config, then"
        " `alphavol reload` and `alphavol start --user {u}`."
    ),
    "crash_limit": (
        "see the traceback in the log (`journalctl -u alphavol`), then `alphavol start --user {u}`."
    ),
}


def user_alert(
    event: str,
    user_id: str,
    *,
    reason: str | None,
    strategies: Iterable[tuple[str, str]] = (),
    leftovers: Iterable[str] = (),
) -> Message:
    """A user stopped and needs its owner. ``strategies``: (strategy id, token) of the
    strategies concerned; ``leftovers``: "12.5 KOGE" each."""
    where = ", ".join(f"{sid} ({token})" for sid, token in strategies) or "-"
    lines = [
        f"User {user_id} stopped on {hostname()}: {WHAT.get(event, event)}.",
        f"Strategy: {where}",
    ]
    if reason:
        lines.append(f"Reason: {reason}")
    left = list(leftovers)
    if left:
        lines.append(f"Left over: {', '.join(left)}")
    lines.append("What to do: " + TODO.get(event, "see `alphavol status`.").format(u=user_id))
    title = f"alphavol: user {user_id} needs you: {event.replace('_', ' ')}"
    return Message(event, title, "\n".join(lines), user_id)


def exit_event(code: int | None, fatal: bool) -> str | None:
    """The event of a user process's exit that made it FATAL (None: not a FATAL exit)."""
    if not fatal:
        return None
    try:
        return EXIT_EVENTS.get(Exit(code), "crash_limit") if code is not None else "crash_limit"
    except ValueError:
        return "crash_limit"


def service_alert(kind: str, detail: str = "") -> Message:
    """``started``, ``stopped`` or ``reload_refused`` (with the reasons)."""
    words = {
        "started": "started",
        "stopped": "stopped",
        "reload_refused": "refused a new config; the old one keeps running",
    }
    body = f"The alphavol supervisor on {hostname()} {words.get(kind, kind)}."
    if detail:
        body += "\n" + detail
    return Message("service", f"alphavol: supervisor {kind.replace('_', ' ')}", body)


def trade_alert(
    user_id: str, strategy_id: str, buy: Decimal, sell: Decimal, cost: Decimal
) -> Message:
    body = f"User {user_id}, {strategy_id}: bought {buy} USDT, sold {sell} USDT, cost {cost} USDT."
    return Message("trade", f"alphavol: user {user_id} round trip", body, user_id)
