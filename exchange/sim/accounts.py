"""Sim accounts: balances (free/locked per asset), their orders and request counters."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from exchange.sim.codes import insufficient_balance
from exchange.sim.numbers import ZERO
from exchange.sim.orders import Order
from exchange.sim.volume import VolumeBook


@dataclass
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass(eq=False)
class Account:
    name: str
    balances: dict[str, Balance] = field(default_factory=dict)  # "USDT" or alphaId
    orders: list[Order] = field(default_factory=list)  # creation order
    open_orders: dict[int, Order] = field(default_factory=dict)
    oto_count: int = 0
    volume: VolumeBook = field(default_factory=VolumeBook)
    requests: Counter = field(default_factory=Counter)
    balance_snapshots: dict[date, Decimal] = field(default_factory=dict)  # UTC day -> 23:59:59

    def bal(self, asset: str) -> Balance:
        b = self.balances.get(asset)
        if b is None:
            b = self.balances[asset] = Balance()
        return b

    def lock(self, asset: str, amount: Decimal) -> None:
        b = self.bal(asset)
        if b.free < amount:
            raise insufficient_balance()
        b.free -= amount
        b.locked += amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        b = self.bal(asset)
        b.locked -= amount
        b.free += amount
