"""The raw YAML sections as msgspec Structs, and the rule (type and range) of every key.

A field left out of the YAML stays ``UNSET``, which is how layering tells "not given at
this layer" from "given as null" (``max_daily_cost_usdt: null`` means: no cap). The
``RULES`` table is the single place that says what a value may be; ``check_value`` turns
a YAML value into the typed value or into a message naming the expected type or range.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

# Ids end up in file names (journals) and ZeroMQ routing ids: keep them plain.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_TRADE_USDT = Decimal("0.1")  # the exchange's minimum notional
MAX_TARGET_POINTS = 60  # 2**60 USDT is already absurd


@dataclass(frozen=True)
class Rule:
    """What one key accepts. ``kind`` picks the type; bounds are inclusive unless ``*_open``."""

    kind: str  # decimal|float|int|bool|text|word|words|id|ids|choice|url|path
    lo: Decimal | None = None
    hi: Decimal | None = None
    lo_open: bool = False
    hi_open: bool = False
    nullable: bool = False
    choices: tuple[str, ...] = ()
    schemes: tuple[str, ...] = ()


def _d(x: str) -> Decimal:
    return Decimal(x)


# Settings that every layer (global default, strategy, user override) may set.
TUNABLE_RULES: dict[str, Rule] = {
    "target_chain": Rule("word"),
    "volume_basis": Rule("choice", choices=("reported", "traded")),
    "single_trade_amount_usdt": Rule("decimal", lo=MIN_TRADE_USDT),
    "trade_interval_seconds": Rule("float", lo=_d("0")),
    "buy_offset_percentage": Rule("decimal", lo=_d("0"), hi=_d("50")),
    "sell_profit_percentage": Rule("decimal", lo=_d("0"), hi=_d("50")),
    "order_timeout_seconds": Rule("float", lo=_d("0"), lo_open=True),
    "volume_check_delay_seconds": Rule("float", lo=_d("0")),
    "max_price_volatility_percentage": Rule("decimal", lo=_d("0"), hi=_d("100"), lo_open=True),
    "max_retry_attempts": Rule("int", lo=_d("0"), hi=_d("1000")),
    "retry_delay_seconds": Rule("float", lo=_d("0")),
    "max_daily_cost_usdt": Rule("decimal", lo=_d("0"), lo_open=True, nullable=True),
    "stop_grace_seconds": Rule("float", lo=_d("0")),
    # target_token: auto (issue 14): where to choose from
    "candidates": Rule("words"),
    "chains": Rule("words"),
    "min_mul_point": Rule("decimal", lo=_d("1"), hi=_d("100")),
    "max_spread_percentage": Rule("decimal", lo=_d("0"), lo_open=True, hi=_d("100"), nullable=True),
    # the 100 USDT balance rule (0 turns the check off)
    "min_balance_usdt": Rule("decimal", lo=_d("0")),
    # human-like variation, drawn afresh for each round trip
    "amount_jitter_percentage": Rule("decimal", lo=_d("0"), hi=_d("50")),
    "interval_jitter_seconds": Rule("float", lo=_d("0"), hi=_d("3600")),
}

AUTO_TOKEN = "auto"  # target_token: auto chooses the cheapest token per batch
AUTO_ONLY_KEYS = ("candidates", "chains", "min_mul_point", "max_spread_percentage")

# Settings of a strategy that a user override may also change.
TARGET_RULES: dict[str, Rule] = {
    "enabled": Rule("bool"),
    "target_token": Rule("word"),
    "target_volume": Rule("decimal", lo=_d("0"), lo_open=True),
    "target_points": Rule("int", lo=_d("1"), hi=Decimal(MAX_TARGET_POINTS)),
}

# What names a strategy; fixed, not overridable per user.
IDENTITY_RULES: dict[str, Rule] = {
    "strategy_id": Rule("id"),
    "strategy_name": Rule("text"),
    "user_ids": Rule("ids"),
}

STRATEGY_RULES = {**IDENTITY_RULES, **TARGET_RULES, **TUNABLE_RULES}
OVERRIDE_RULES = {**TARGET_RULES, **TUNABLE_RULES}
# Settings of a user (in its ``user_overrides`` entry, beside ``strategies``); the
# global default is in ``global_settings``.
USER_RULES: dict[str, Rule] = {
    "parallel_strategies": Rule("bool"),  # run the user's strategies side by side
}
GLOBAL_RULES: dict[str, Rule] = {
    "max_concurrent_users": Rule("int", lo=_d("1"), hi=_d("1000")),
    **USER_RULES,
    **{f"default_{k}": r for k, r in TUNABLE_RULES.items()},
    **TUNABLE_RULES,  # the seeds also write some defaults without the prefix
}

EXCHANGE_RULES: dict[str, Rule] = {
    "base_url": Rule("url", schemes=("http", "https")),
    "ws_url": Rule("url", schemes=("ws", "wss")),
    "request_timeout_seconds": Rule("float", lo=_d("0"), lo_open=True, hi=_d("600")),
}
PATHS_RULES: dict[str, Rule] = {"data_dir": Rule("path"), "runtime_dir": Rule("path")}
SCHEDULE_RULES: dict[str, Rule] = {
    "daily_restart": Rule("bool"),
    "offset_seconds": Rule("float", lo=_d("0"), hi=_d("86400"), hi_open=True),
}
LOGGING_RULES: dict[str, Rule] = {
    "level": Rule("choice", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    "format": Rule("choice", choices=("auto", "json", "console")),
}
TOP_LEVEL_KEYS = (
    "global_settings",
    "strategies",
    "user_overrides",
    "exchange",
    "paths",
    "schedule",
    "logging",
    "notify",  # config/service_sections.py
    "metrics",
    "dashboard",  # config/dashboard_section.py
    "store",  # config/store_section.py
)


class SettingsLayer(msgspec.Struct, kw_only=True):
    """One layer of strategy settings; UNSET = not given here, inherit from below."""

    enabled: bool | UnsetType = UNSET
    target_token: str | UnsetType = UNSET
    target_volume: Decimal | UnsetType = UNSET
    target_points: int | UnsetType = UNSET
    target_chain: str | UnsetType = UNSET
    volume_basis: str | UnsetType = UNSET
    single_trade_amount_usdt: Decimal | UnsetType = UNSET
    trade_interval_seconds: float | UnsetType = UNSET
    buy_offset_percentage: Decimal | UnsetType = UNSET
    sell_profit_percentage: Decimal | UnsetType = UNSET
    order_timeout_seconds: float | UnsetType = UNSET
    volume_check_delay_seconds: float | UnsetType = UNSET
    max_price_volatility_percentage: Decimal | UnsetType = UNSET
    max_retry_attempts: int | UnsetType = UNSET
    retry_delay_seconds: float | UnsetType = UNSET
    max_daily_cost_usdt: Decimal | UnsetType | None = UNSET
    stop_grace_seconds: float | UnsetType = UNSET
    candidates: tuple[str, ...] | UnsetType = UNSET
    chains: tuple[str, ...] | UnsetType = UNSET
    min_mul_point: Decimal | UnsetType = UNSET
    max_spread_percentage: Decimal | UnsetType | None = UNSET
    min_balance_usdt: Decimal | UnsetType = UNSET
    amount_jitter_percentage: Decimal | UnsetType = UNSET
    interval_jitter_seconds: float | UnsetType = UNSET

    def given(self) -> dict[str, Any]:
        """The settings this layer actually sets."""
        return {
            f: getattr(self, f) for f in self.__struct_fields__ if getattr(self, f) is not UNSET
        }


class StrategySection(SettingsLayer, kw_only=True):
    """One entry of ``strategies:``."""

    strategy_id: str
    strategy_name: str | UnsetType = UNSET
    user_ids: list[str]

    def given(self) -> dict[str, Any]:
        out = super().given()
        for f in IDENTITY_RULES:
            out.pop(f, None)
        return out


def describe(value: Any) -> str:
    """A short description of a YAML value for messages ("text 'abc'", "a list" ...)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no value)"
    if isinstance(value, int | Decimal | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"text {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _range_text(rule: Rule) -> str:
    parts = []
    if rule.lo is not None:
        parts.append(f"{'>' if rule.lo_open else '>='} {rule.lo}")
    if rule.hi is not None:
        parts.append(f"{'<' if rule.hi_open else '<='} {rule.hi}")
    return " and ".join(parts)


def _in_range(num: Decimal, rule: Rule) -> bool:
    if rule.lo is not None and (num <= rule.lo if rule.lo_open else num < rule.lo):
        return False
    return not (rule.hi is not None and (num >= rule.hi if rule.hi_open else num > rule.hi))


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))  # dict input: 0.1 -> Decimal("0.1"), not the binary float
    return None


# (the typed value, None) or (None, what is wrong)
Checked = tuple[Any, str | None]


def check_value(value: Any, rule: Rule) -> tuple[Any, str | None]:
    """Convert ``value`` per ``rule``: (typed value, None) or (None, what is wrong)."""
    if value is None:
        return (None, None) if rule.nullable else (None, f"must be set, got {describe(value)}")
    return _CHECKS[rule.kind](value, rule)


def _check_number(value: Any, rule: Rule) -> Checked:
    """decimal, float, int: a finite number within the rule's range."""
    num = _as_decimal(value)
    if num is None:
        want = "a whole number" if rule.kind == "int" else "a number"
        return None, f"expected {want}, got {describe(value)}"
    if not num.is_finite():
        return None, f"expected a finite number, got {value}"
    if rule.kind == "int" and num != num.to_integral_value():
        return None, f"expected a whole number, got {describe(value)}"
    if not _in_range(num, rule):
        return None, f"must be {_range_text(rule)}, got {num}"
    if rule.kind == "decimal":
        return num, None
    if rule.kind == "int":
        return int(num), None
    f = float(num)
    return (f, None) if math.isfinite(f) else (None, f"expected a finite number, got {num}")


def _check_bool(value: Any, _rule: Rule) -> Checked:
    if isinstance(value, bool):
        return value, None
    return None, f"expected true or false, got {describe(value)}"


def _check_ids(value: Any, _rule: Rule) -> Checked:
    """A non-empty list of user ids, none twice."""
    if not isinstance(value, list) or not value:
        return None, f"expected a non-empty list of user ids, got {describe(value)}"
    ids: list[str] = []
    for i, item in enumerate(value):
        uid, err = _check_id(item)
        if err:
            return None, f"item {i}: {err}"
        if uid is None or uid in ids:
            return None, f"user id {uid!r} is listed twice"
        ids.append(uid)
    return ids, None


def _text_of(value: Any) -> Checked:
    """The text kinds start alike: text, stripped, not empty."""
    if not isinstance(value, str):
        return None, f"expected text, got {describe(value)}"
    text = value.strip()
    return (text, None) if text else (None, "must not be empty")


def _check_text(value: Any, _rule: Rule) -> Checked:
    """text and path: any text that is not blank."""
    return _text_of(value)


def _check_word(value: Any, _rule: Rule) -> Checked:
    text, err = _text_of(value)
    if text is not None and any(c.isspace() for c in text):
        return None, f"must be one word, got {describe(value)}"
    return text, err


def _check_choice(value: Any, rule: Rule) -> Checked:
    """One of ``rule.choices``, in any case; the choice is returned as the rule spells it."""
    text, err = _text_of(value)
    if text is None:
        return None, err
    for choice in rule.choices:
        if text.lower() == choice.lower():
            return choice, None
    return None, f"must be one of {', '.join(rule.choices)}; got {text!r}"


def _check_url(value: Any, rule: Rule) -> Checked:
    """A URL with one of ``rule.schemes``, without its trailing '/'."""
    text, err = _text_of(value)
    if text is None:
        return None, err
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in rule.schemes:
        want = " or ".join(f"{s}://" for s in rule.schemes)
        return None, f"must start with {want}, got {describe(value)}"
    return text.rstrip("/"), None


def _check_words(value: Any) -> tuple[tuple[str, ...] | None, str | None]:
    """A list of plain names (token symbols, chains), each one word, none twice."""
    if not isinstance(value, list) or not value:
        return None, f"expected a non-empty list of names, e.g. [LIGHT, AOP]; got {describe(value)}"
    words: list[str] = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, str | int):
            return None, f"item {i}: expected a name, got {describe(item)}"
        text = str(item).strip()
        if not text or any(c.isspace() for c in text):
            return None, f"item {i}: must be one word, got {describe(item)}"
        if text.upper() in (w.upper() for w in words):
            return None, f"item {i}: {text!r} is listed twice"
        words.append(text)
    return tuple(words), None


def _check_id(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, bool):
        return None, (
            f"expected an id, got {describe(value)}; YAML reads yes/no/on/off as true/false,"
            " so quote it"
        )
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None, f"expected an id (a number or a name), got {describe(value)}"
    text = str(value).strip()
    if not ID_RE.match(text):
        return None, (
            f"id {text!r} must be 1-64 letters, digits, '_', '.' or '-' (starting with a letter or digit)"
        )
    return text, None


# Rule.kind -> the check of a (non-null) value of that kind
_CHECKS: dict[str, Callable[[Any, Rule], Checked]] = {
    "decimal": _check_number,
    "float": _check_number,
    "int": _check_number,
    "bool": _check_bool,
    "id": lambda value, _rule: _check_id(value),
    "ids": _check_ids,
    "words": lambda value, _rule: _check_words(value),
    "text": _check_text,
    "path": _check_text,
    "word": _check_word,
    "choice": _check_choice,
    "url": _check_url,
}
