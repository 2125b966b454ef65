"""Knobs of the user process that are not part of the user's strategy settings.

Production uses the defaults. Tests and benchmarks shrink them (to 0 or tens of
milliseconds) so a whole run to target takes well under a second; nothing in ``userproc``
waits on a hard-coded delay.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from protocol.messages import HEARTBEAT_TIMEOUT


class Tuning(msgspec.Struct, frozen=True, kw_only=True):
    # supervisor link
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT  # no Ping for this long -> stop as "now"
    heartbeat_enabled: bool = True  # off only for in-process tests without a supervisor
    # stream
    stream_connect_timeout: float = 30.0  # no stream for this long -> Exit.EXCHANGE_DOWN
    rest_check_seconds: float = 30.0  # while waiting on an order, ask REST at least this often
    # a leg is overdue (REST is asked) after overdue_factor x the 90th percentile of the
    # legs this process has seen, at least overdue_floor_seconds: a dropped report costs
    # about that, not rest_check_seconds
    overdue_factor: float = 2.0
    overdue_floor_seconds: float = 1.0
    stream_rotate_seconds: float = 1800.0
    stream_initial_backoff: float = 0.5
    stream_max_backoff: float = 30.0
    cancel_on_exit: bool = True  # cancel our orders still open when exiting on an error
    # volatility guard
    volatility_window_seconds: float = 60.0
    volatility_wait_seconds: float = 5.0  # how long to pause before looking again
    # the next buy is priced from our own last fill if it is younger than this (seconds);
    # older, or after a trade that did not fill as priced, the ticker is asked
    fill_price_max_age_seconds: float = 3.0
    # leftovers
    leftover_sell_attempts: int = 3
    leftover_sell_discount_percentage: Decimal = Decimal("2")  # below market: marketable
    leftover_sell_timeout_seconds: float | None = None  # None: order_timeout_seconds
    # volume settling
    settle_poll_seconds: float = 1.0
    volume_reads: int = 2  # reads before deciding "at target" (two reads can disagree)
    token_list_max_age_seconds: float = 300.0  # the token list is asked again after this
    mul_point_max_age_seconds: float = 60.0  # after a batch, mulPoint is asked if older
    # unknown-outcome look-ups
    lookup_attempts: int = 3
    lookup_delay_seconds: float = 1.0
    # a POST still in flight when we died may land until its timeout has passed: look
    # it up only after intent time + request timeout + this margin
    post_land_margin_seconds: float = 2.0
    lookup_slack_ms: int = 120_000  # how far before the intent time an order may be stamped
    # after this many trades in a row that placed or filled nothing, stop the user
    max_consecutive_failures: int = 5
    # seeds the random source of amount_jitter_percentage / interval_jitter_seconds
    # (None: unpredictable); tests set it to replay a run
    jitter_seed: int | None = None


DEFAULT_TUNING = Tuning()
