"""How a user process ended -> its exit status (the child-to-parent protocol), in one
module: the exception that ended the run (``EXITS``, the first match wins), or, when
nothing was raised, the outcome (``finished``), then what the stop itself forces
(``forced_exit``: a lost supervisor) and what the wind-down found unfinished
(``unfinished``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from exchange.errors import (
    InsufficientBalance,
    OrderRejected,
    ProxyLoginRefused,
    RiskChallenge,
    SessionExpired,
)
from protocol import messages as m
from protocol.exitcodes import Exit
from userproc.errors import (
    BadReplies,
    BadSetup,
    CostCapReached,
    ExchangeDown,
    JournalUnreadable,
    JournalUnusable,
    LeftoverError,
    LowBalance,
    StopRequested,
    StrategyFailed,
    UserStop,
)
from userproc.journal import JournalBusy
from userproc.outcome import ChallengedWithLeftover


@dataclass(frozen=True)
class Ending:
    exit: Exit
    reason: str
    cleanup: bool = True  # cancel and sell on the way out (not when the exchange shut us out)
    ours: bool = True  # the journal is ours to report on (not while another process owns it)
    leftovers: tuple[m.Leftover, ...] = ()  # what it knows is left unsold


Make = Callable[[Any, str], Ending]  # (the exception, the user id) -> Ending


def _as(code: Exit) -> Make:
    """A ``UserStop`` whose reason says it all."""
    return lambda e, _u: Ending(code, e.reason)


def _challenged(e: RiskChallenge, _user_id: str) -> Ending:
    reason = (
        "the exchange asks for a verification (risk challenge): pass it in the browser,"
        " then start the user again; not retrying"
    )
    left = e.leftover if isinstance(e, ChallengedWithLeftover) else None
    if left is None:
        return Ending(Exit.RISK_CHALLENGE, reason, cleanup=False)
    lo = m.Leftover(asset=left.asset, token=left.token, quantity=left.quantity)
    return Ending(Exit.RISK_CHALLENGE, f"{reason}; {left.reason}", False, leftovers=(lo,))


def proxy_fix(e: ProxyLoginRefused, user_id: str) -> str:
    """What a wrong proxy password says, and the fix, on one line (password masked)."""
    return (
        f"{e.message}; fix the proxy of user {user_id} (user_overrides[].proxy) in the config,"
        f" then `alphavol reload` and `alphavol start --user {user_id}`"
    )


EXITS: tuple[tuple[type[BaseException], Make], ...] = (
    (
        SessionExpired,
        lambda e, _u: Ending(
            Exit.SESSION_EXPIRED,
            "session expired: log in again and store a fresh copied request",
            cleanup=False,
        ),
    ),
    (RiskChallenge, _challenged),
    (
        ProxyLoginRefused,  # nothing reaches the exchange: nothing to clean up through it
        lambda e, user_id: Ending(Exit.PROXY_REFUSED, proxy_fix(e, user_id), cleanup=False),
    ),
    (
        InsufficientBalance,
        lambda e, _u: Ending(
            Exit.INSUFFICIENT_BALANCE,
            f"insufficient balance: the exchange refused the order ({e.message}, code"
            f" {e.code}); add USDT to the account's Alpha wallet, then start the user again",
        ),
    ),
    (
        LeftoverError,
        lambda e, _u: Ending(
            Exit.LEFTOVER,
            e.reason,
            leftovers=(m.Leftover(asset=e.asset, token=e.token, quantity=e.quantity),),
        ),
    ),
    (StopRequested, _as(Exit.OK)),  # a stop that came before anything could finish
    (ExchangeDown, _as(Exit.EXCHANGE_DOWN)),
    (BadReplies, _as(Exit.BAD_REPLY)),
    (StrategyFailed, _as(Exit.BAD_CONFIG)),  # also OrdersRejected, VolumeNotCounted
    (CostCapReached, _as(Exit.COST_CAP)),
    (LowBalance, _as(Exit.LOW_BALANCE)),
    (BadSetup, _as(Exit.BAD_CONFIG)),
    (JournalUnreadable, _as(Exit.BAD_CONFIG)),
    (JournalUnusable, _as(Exit.CRASH)),  # restarted with backoff: space may be freed
    (UserStop, _as(Exit.CRASH)),  # e.g. the user stream ended
    (JournalBusy, lambda e, _u: Ending(Exit.CRASH, str(e), cleanup=False, ours=False)),
    (OrderRejected, lambda e, _u: Ending(Exit.BAD_CONFIG, f"order refused: {e}")),
    (Exception, lambda e, _u: Ending(Exit.CRASH, f"unexpected error: {type(e).__name__}: {e}")),
)


def ending_of(exc: BaseException, user_id: str) -> Ending:
    for kind, make in EXITS:
        if isinstance(exc, kind):
            return make(exc, user_id)
    raise exc


def finished(stop_reason: str | None, stopping: bool) -> Ending:
    """A run that raised nothing: stopped (drain or now) or every target reached."""
    if stopping:
        return Ending(Exit.OK, stop_reason or "stopped")
    return Ending(Exit.OK, "target reached")


def forced_exit(*, supervisor_lost: bool) -> Exit | None:
    """The status the stop itself forces on a run that would end OK."""
    return Exit.SUPERVISOR_LOST if supervisor_lost else None


def with_forced(ending: Ending, forced: Exit | None, stop_reason: str | None) -> Ending:
    if ending.exit is Exit.OK and forced is not None:
        return Ending(forced, stop_reason or ending.reason)
    return ending


def unfinished(ending: Ending, trips: int, held: list[m.Leftover]) -> Ending:
    """Round trips the wind-down could not finish: never end quietly with tokens or
    orders we cannot account for (LEFTOVER, unless the exchange shut us out)."""
    what = ", ".join(f"{lo.quantity} {lo.token}" for lo in held) or "unknown amounts"
    reason = (
        f"{ending.reason}; {trips} round trip(s) could not be finished before exit"
        f" (bought and not sold: {what}); the next start reconciles them"
    )
    code = Exit.LEFTOVER if ending.cleanup else ending.exit
    return Ending(code, reason, ending.cleanup, ending.ours, ending.leftovers)
