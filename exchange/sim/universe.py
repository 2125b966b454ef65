"""The tokens the simulated exchange lists, and the scenario file that can replace them.

The default universe ships as package data (``tokens.yaml``) so ``alphavol sim`` works
with no arguments; a scenario YAML can swap in other tokens, prices, volatility, spreads,
listing dates, scripted price jumps, starting faults/config and pre-funded accounts.

A token's ``mulPoint`` follows the programme's rule (``exchange.points``) from its chain
and listing time, on the sim clock's UTC day; ``mul_point`` given explicitly pins it
instead (scenarios written before the rule, and ``set_token`` in tests).
``listed_days_ago`` places the listing relative to the sim's start, so a default token
keeps the same multiplier whatever the date a test runs on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from exchange.points import mul_point_on

LISTING_HOUR = 10  # UTC hour of a listing placed by ``listed_days_ago`` (real ones: 09-11)
TOKEN_STATUSES = ("TRADING", "BREAK", "DELISTED")


@dataclass
class TokenSpec:
    """One listed token with its trading filters (``symbol`` is the plain name, e.g. KOGE)."""

    symbol: str
    alpha_id: str
    price: Decimal
    mul_point: int | None = None  # pinned multiplier; None: the 30-day rule decides
    name: str = ""
    chain_name: str = "BSC"
    chain_id: str = "56"
    tick_size: Decimal = Decimal("0.00000001")
    step_size: Decimal = Decimal("0.0001")
    min_qty: Decimal = Decimal(0)  # 0: the lot step
    max_qty: Decimal = Decimal("100000000")
    min_notional: Decimal = Decimal("0.1")
    max_notional: Decimal = Decimal("1000000")
    min_price: Decimal = Decimal(0)  # 0: the tick
    max_price: Decimal = Decimal("100000")
    volatility: Decimal = Decimal("0")  # relative std-dev of the walk per sqrt(second)
    max_open_orders: int = 200
    spread: Decimal = Decimal("0")  # (ask - bid) / mid; 0: one price for both sides
    depth_usdt: Decimal = Decimal("5000")  # USDT shown on each fullDepth level
    listing_time: int | None = None  # epoch ms of the Alpha listing
    listed_days_ago: int | None = None  # listing N UTC days before the sim's start day
    contract_address: str | None = None
    status: str = "TRADING"  # TRADING | BREAK | DELISTED (no new buys unless TRADING)

    def __post_init__(self) -> None:
        if not self.min_qty:
            self.min_qty = self.step_size
        if not self.min_price:
            self.min_price = self.tick_size
        if not self.name:
            self.name = self.symbol
        if not self.contract_address:
            digest = hashlib.sha1(self.alpha_id.encode(), usedforsecurity=False).hexdigest()
            self.contract_address = "0x" + digest
        if self.spread < 0 or self.spread >= 1:
            raise ValueError(f"token {self.symbol}: spread must be in [0, 1)")
        if self.status not in TOKEN_STATUSES:
            raise ValueError(f"token {self.symbol}: status must be one of {TOKEN_STATUSES}")

    @property
    def pair(self) -> str:
        """The trading symbol the order endpoints use, e.g. ``ALPHA_22USDT``."""
        return f"{self.alpha_id}USDT"

    def place_listing(self, start: float) -> None:
        """Turn ``listed_days_ago`` into a listing time, counted from the sim's start."""
        if self.listing_time is not None or self.listed_days_ago is None:
            return
        days = self.listed_days_ago
        if days <= 0:
            self.listing_time = int(start * 1000)
            return
        start_day = datetime.fromtimestamp(start, tz=UTC).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        listed = start_day - timedelta(days=days) + timedelta(hours=LISTING_HOUR)
        self.listing_time = int(listed.timestamp() * 1000)

    def mul_point_at(self, now: float) -> int:
        """The multiplier on the UTC day of ``now`` (epoch seconds)."""
        if self.mul_point is not None:
            return self.mul_point
        day = datetime.fromtimestamp(now, tz=UTC).date()
        return mul_point_on(day, self.listing_time, self.chain_name, self.chain_id)


@dataclass
class PriceJump:
    """A scripted move: at ``at`` seconds after start set ``price`` or multiply by ``factor``."""

    at: float
    symbol: str
    price: Decimal | None = None
    factor: Decimal | None = None


@dataclass
class Scenario:
    tokens: list[TokenSpec]
    jumps: list[PriceJump] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # seed, fill_delay, ... (CLI names)
    faults: dict[str, Any] = field(default_factory=dict)
    accounts: dict[str, dict[str, Decimal]] = field(
        default_factory=dict
    )  # account -> asset -> amount


_DEC_FIELDS = {
    "price",
    "tick_size",
    "step_size",
    "min_qty",
    "max_qty",
    "min_notional",
    "max_notional",
    "min_price",
    "max_price",
    "volatility",
    "spread",
    "depth_usdt",
}
_INT_FIELDS = {"mul_point", "max_open_orders", "listing_time", "listed_days_ago"}


def token_from_dict(raw: dict[str, Any]) -> TokenSpec:
    known = set(TokenSpec.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"token {raw.get('symbol')!r}: unknown fields {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _DEC_FIELDS and value is not None:
            kwargs[key] = Decimal(str(value))
        elif key in _INT_FIELDS and value is not None:
            kwargs[key] = int(value)
        else:
            kwargs[key] = str(value) if value is not None else value
    return TokenSpec(**kwargs)


def default_tokens() -> list[TokenSpec]:
    text = resources.files("exchange.sim").joinpath("tokens.yaml").read_text(encoding="utf-8")
    return [token_from_dict(t) for t in yaml.safe_load(text)["tokens"]]


def load_scenario(path: str | Path | None) -> Scenario:
    """Read a scenario YAML (or return the default universe when ``path`` is None).

    Keys: ``tokens`` (replace the universe), ``extra_tokens`` (add to it), ``jumps``
    (``at``, ``symbol``, ``price`` | ``factor``), ``options`` (seed, fill_delay, volume_lag,
    starting_usdt, counting, volume_jitter, listen_key_ttl, volatility, spread), ``faults``
    and ``accounts`` (account -> {asset or symbol: amount}). A token's own keys are the
    ``TokenSpec`` fields (``spread``, ``listing_time`` or ``listed_days_ago``, ``chain_name``
    ...); ``options.spread`` / ``options.volatility`` override every token's.
    """
    if path is None:
        return Scenario(tokens=default_tokens())
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    tokens = [token_from_dict(t) for t in raw["tokens"]] if raw.get("tokens") else default_tokens()
    tokens += [token_from_dict(t) for t in raw.get("extra_tokens") or []]
    jumps = [
        PriceJump(
            at=float(j["at"]),
            symbol=str(j["symbol"]),
            price=Decimal(str(j["price"])) if j.get("price") is not None else None,
            factor=Decimal(str(j["factor"])) if j.get("factor") is not None else None,
        )
        for j in raw.get("jumps") or []
    ]
    accounts = {
        str(acc): {str(k): Decimal(str(v)) for k, v in (bal or {}).items()}
        for acc, bal in (raw.get("accounts") or {}).items()
    }
    return Scenario(
        tokens=tokens,
        jumps=jumps,
        options=dict(raw.get("options") or {}),
        faults=dict(raw.get("faults") or {}),
        accounts=accounts,
    )
