"""Exit statuses of a user process: the child-to-parent protocol (as in gunicorn's arbiter).

The supervisor's restart policy (``supervisor.restart``) maps each to an action. Anything
not listed (including death by a signal) is a crash: restart with backoff.
"""

from __future__ import annotations

import enum
from typing import cast

from protocol.vocab import ErrorKind


class Exit(enum.IntEnum):
    OK = 0  # target reached, or drained/stopped cleanly on request
    CRASH = 1  # unhandled error: restart with backoff
    SESSION_EXPIRED = 10  # the user must log in again: FATAL, never restart
    RISK_CHALLENGE = 11  # the exchange wants a verification: FATAL, never retry
    BAD_CONFIG = 12  # settings or credentials unusable: FATAL
    LEFTOVER = 13  # tokens could not be sold: FATAL, the status says what is left
    COST_CAP = 14  # max_daily_cost_usdt reached: STOPPED for the day
    EXCHANGE_DOWN = 15  # retries exhausted on 5xx/timeouts: restart with backoff
    SUPERVISOR_LOST = 16  # heartbeats stopped: the process stopped trading on its own
    INSUFFICIENT_BALANCE = 17  # the exchange refused an order for balance: FATAL, no retry
    BAD_REPLY = 18  # the exchange kept sending numbers that cannot be true: FATAL
    LOW_BALANCE = 19  # trading on would end the day under min_balance_usdt: STOPPED for the day
    PROXY_REFUSED = 20  # the user's proxy refused its username or password: FATAL, no retry

    @property
    def restartable(self) -> bool:
        return self in (Exit.CRASH, Exit.EXCHANGE_DOWN)

    @property
    def kind(self) -> ErrorKind:
        """What an ``ErrorReport`` of this exit names: the name in lower case."""
        return cast("ErrorKind", self.name.lower())  # every one is listed (tests check)

    @property
    def fatal(self) -> bool:
        return self in (
            Exit.SESSION_EXPIRED,
            Exit.RISK_CHALLENGE,
            Exit.BAD_CONFIG,
            Exit.LEFTOVER,
            Exit.INSUFFICIENT_BALANCE,
            Exit.BAD_REPLY,
            Exit.PROXY_REFUSED,
        )


def describe(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by signal {-code}"
    try:
        return Exit(code).name.lower()
    except ValueError:
        return f"exit status {code}"


class SupervisorExit(enum.IntEnum):
    """Exit statuses of the supervisor (``alphavol run``, ``quick``): what systemd and
    scripts see. systemd restarts on anything but OK and OPERATOR."""

    OK = 0  # stopped on request, or (--once) every user reached its target or was skipped
    USERS_FAILED = 1  # --once: some user ended FATAL, with leftovers, or short of its target
    OPERATOR = 2  # the operator's own mistake (config, credentials, a supervisor running)
    INTERNAL = 70  # a supervisor task failed (sysexits' EX_SOFTWARE): users drained, then exit
