"""The resolved settings the rest of alphavol reads.

``config.loader`` turns the YAML file (global -> strategy -> user override) into these;
nothing outside ``config/`` ever looks at the raw YAML. Money is Decimal, durations are
seconds as floats.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

import msgspec

VolumeBasis = Literal["reported", "traded"]

DEFAULT_BASE_URL = "https://www.binance.com"
DEFAULT_WS_URL = "wss://nbstream.binance.com/w3w/stream"


class EffectiveSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one user needs to run one strategy, after layering."""

    strategy_id: str
    strategy_name: str
    user_id: str
    enabled: bool = True
    target_token: str  # plain symbol, e.g. KOGE (the alphaId is looked up in the token list)
    target_chain: str = "BSC"
    target_volume: Decimal  # in ``volume_basis`` units (2**target_points when points given)
    target_points: int | None = None
    volume_basis: VolumeBasis = "reported"
    single_trade_amount_usdt: Decimal = Decimal("30")
    trade_interval_seconds: float = 1.0
    buy_offset_percentage: Decimal = Decimal("0.5")  # buy = market x (1 + this/100)
    sell_profit_percentage: Decimal = Decimal("1.0")  # sell = buy x (1 - this/100)
    order_timeout_seconds: float = 300.0
    volume_check_delay_seconds: float = 5.0
    max_price_volatility_percentage: Decimal = Decimal("5.0")
    max_retry_attempts: int = 3
    retry_delay_seconds: float = 5.0
    max_daily_cost_usdt: Decimal | None = None
    stop_grace_seconds: float = 30.0
    # target_token "auto": before each batch, trade the token with the lowest expected cost
    # per credited USDT (userproc/chooser.py), among these filters
    candidates: tuple[str, ...] = ()  # plain symbols; empty: every token the exchange lists
    chains: tuple[str, ...] = ()  # only tokens on these chains; empty: any chain
    min_mul_point: Decimal = Decimal(1)  # only tokens whose mulPoint today is at least this
    max_spread_percentage: Decimal | None = None  # skip tokens with a wider bid/ask spread
    # stop for the day when trading on would leave the account's eligible balance (USDT +
    # Alpha tokens at the bid) under this at 23:59:59 UTC: that day earns no volume points
    min_balance_usdt: Decimal = Decimal(100)  # 0: no check
    amount_jitter_percentage: Decimal = Decimal(0)  # each trade's amount +- up to this %
    interval_jitter_seconds: float = 0.0  # each pause +- up to this many seconds

    @property
    def auto(self) -> bool:
        """``target_token: auto``: the token is chosen before each batch."""
        return self.target_token.lower() == "auto"


class ExchangeSettings(msgspec.Struct, frozen=True, kw_only=True):
    base_url: str = DEFAULT_BASE_URL
    ws_url: str = DEFAULT_WS_URL
    request_timeout_seconds: float = 10.0


class PathSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Absolute paths (the loader resolves relative ones against the config file)."""

    data_dir: str  # credentials store and per-user journals
    runtime_dir: str  # ZeroMQ ipc sockets; created 0700

    @property
    def data(self) -> Path:
        return Path(self.data_dir)

    @property
    def runtime(self) -> Path:
        return Path(self.runtime_dir)

    def journal_path(self, user_id: str) -> Path:
        return self.data / "journals" / f"user-{user_id}.sqlite"

    @property
    def credentials_path(self) -> Path:
        return self.data / "credentials.sqlite"


class ScheduleSettings(msgspec.Struct, frozen=True, kw_only=True):
    daily_restart: bool = True  # start the day again after the UTC reset (without --once)
    offset_seconds: float = 300.0  # how long after 00:00 UTC


class LoggingSettings(msgspec.Struct, frozen=True, kw_only=True):
    level: str = "INFO"
    format: Literal["auto", "json", "console"] = "auto"  # auto: console on a tty, else json


# Notification events (``notify.events``); the README says what each means.
NOTIFY_USER_EVENTS = (
    "session_expired",
    "risk_challenge",
    "insufficient_balance",
    "low_balance",
    "leftover",
    "bad_setup",
    "bad_reply",
    "proxy_refused",
    "crash_limit",
    "session_aging",  # a stored session older than dashboard.session_warn_hours
)
NOTIFY_EVENTS = (*NOTIFY_USER_EVENTS, "daily_summary", "service", "trade")
DEFAULT_NOTIFY_EVENTS = tuple(e for e in NOTIFY_EVENTS if e != "trade")


class NotifySettings(msgspec.Struct, frozen=True, kw_only=True):
    """``notify:`` Apprise URLs (secrets: their tokens are masked everywhere) and the
    events to send; no URL, no notifications (and Apprise is never imported)."""

    urls: tuple[str, ...] = ()
    events: tuple[str, ...] = DEFAULT_NOTIFY_EVENTS
    timeout_seconds: float = 10.0  # per attempt: connect, send and read together
    retries: int = 3  # attempts per message and channel


class Listening(msgspec.Struct, frozen=True, kw_only=True):
    """A ``listen: HOST:PORT`` of the supervisor's (None: it does not serve), split."""

    listen: str | None = None

    @property
    def host(self) -> str:
        return (self.listen or "").rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int((self.listen or "0").rpartition(":")[2])


class MetricsSettings(Listening, frozen=True, kw_only=True):
    """``metrics:`` where the supervisor serves Prometheus metrics ("127.0.0.1:9464")."""

    allow_remote: bool = False  # a non-loopback listen address needs this set


class DashboardSettings(Listening, frozen=True, kw_only=True):
    """``dashboard:`` where the supervisor serves the web page ("127.0.0.1:8780"), the
    file holding its token, and when a stored session is old enough to announce."""

    token_file: str | None = None  # absolute
    session_warn_hours: float = 96.0
