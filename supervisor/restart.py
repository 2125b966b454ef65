"""The restart policy: what happens when a user process exits, in one place.

Exit statuses are the child-to-parent protocol (``protocol.exitcodes``):

* OK -> DONE; COST_CAP and LOW_BALANCE -> STOPPED for the day;
* SESSION_EXPIRED, RISK_CHALLENGE, BAD_CONFIG, LEFTOVER, INSUFFICIENT_BALANCE, BAD_REPLY,
  PROXY_REFUSED (``Exit.fatal``) -> FATAL at once: restarting would not help and, for a risk
  challenge, would make the account's standing worse; a proxy that refuses the password
  refuses it again (a proxy that cannot be reached is EXCHANGE_DOWN: restarted);
* anything else (CRASH, EXCHANGE_DOWN, SUPERVISOR_LOST, unknown codes, death by a signal)
  -> restart after 1, 2, 4 ... seconds up to ``max_delay``; the delay starts over after a
  healthy stretch; more than ``max_crashes`` crashes within ``window`` -> FATAL.

Every number is injectable (tests use milliseconds); ``from_env`` lets an operator or a
test tune them without touching the config schema.
"""

from __future__ import annotations

import enum
import os
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from protocol.exitcodes import Exit, describe


class Action(enum.StrEnum):
    DONE = "done"
    STOPPED = "stopped"
    FATAL = "fatal"
    RESTART = "restart"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    delay: float = 0.0


@dataclass(frozen=True)
class RestartPolicy:
    initial_delay: float = 1.0
    max_delay: float = 60.0
    healthy_after: float = 120.0  # a process that ran this long resets the delay
    max_crashes: int = 5
    window: float = 600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RestartPolicy:
        env = os.environ if env is None else env
        kw: dict[str, float | int] = {}
        for name, key, conv in (
            ("initial_delay", "ALPHAVOL_RESTART_DELAY", float),
            ("max_delay", "ALPHAVOL_RESTART_MAX_DELAY", float),
            ("healthy_after", "ALPHAVOL_RESTART_HEALTHY_AFTER", float),
            ("max_crashes", "ALPHAVOL_CRASH_LIMIT", int),
            ("window", "ALPHAVOL_CRASH_WINDOW", float),
        ):
            if env.get(key):
                kw[name] = conv(env[key])
        return cls(**kw)  # type: ignore[arg-type]


@dataclass
class CrashHistory:
    """One user's recent crashes and current backoff delay."""

    policy: RestartPolicy
    crashes: deque[float] = field(default_factory=deque)
    delay: float = 0.0

    def reset(self) -> None:
        self.crashes.clear()
        self.delay = 0.0

    def on_exit(
        self, exitcode: int | None, *, now: float, ran_for: float, requested_stop: bool = False
    ) -> Decision:
        """Decide what an exit means. ``requested_stop``: we sent Drain/StopNow."""
        code = exitcode if exitcode is not None else -9
        what = describe(code)
        if code >= 0:
            try:
                ex = Exit(code)
            except ValueError:
                ex = None
            if ex is Exit.OK:
                return Decision(Action.STOPPED if requested_stop else Action.DONE, what)
            if ex is not None and ex.fatal:
                return Decision(Action.FATAL, what)
            if ex is Exit.COST_CAP:
                return Decision(Action.STOPPED, "daily cost cap reached")
            if ex is Exit.LOW_BALANCE:
                return Decision(Action.STOPPED, "balance under min_balance_usdt for today")
        if requested_stop:
            return Decision(Action.STOPPED, f"stopped ({what})")
        p = self.policy
        if ran_for >= p.healthy_after:
            self.delay = 0.0
        while self.crashes and now - self.crashes[0] > p.window:
            self.crashes.popleft()
        self.crashes.append(now)
        if len(self.crashes) > p.max_crashes:
            return Decision(
                Action.FATAL,
                f"{what}: crashed {len(self.crashes)} times within {p.window:g} s",
            )
        self.delay = p.initial_delay if self.delay <= 0 else min(self.delay * 2, p.max_delay)
        return Decision(Action.RESTART, what, delay=self.delay)
