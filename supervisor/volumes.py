"""Every user's volume today, asked concurrently (seed 000: check everyone, then start only
the users under target). Used at the start of each day, for users added by a reload, and
by ``alphavol volumes``.

One ``user_volume`` call per user (not per strategy), bounded concurrency, and one public
token-list call when a strategy counts in ``traded`` units (reported / mulPoint).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from config.settings import EffectiveSettings, ExchangeSettings
from exchange.auth import Credentials


@dataclass(frozen=True)
class VolumeResult:
    user_id: str
    strategy_id: str
    token: str
    target: Decimal
    basis: str
    current: Decimal | None = None  # None when the check failed
    error: str | None = None
    session_expired: bool = False

    @property
    def at_target(self) -> bool:
        return self.current is not None and self.current >= self.target


async def check_volumes(
    pairs: Iterable[EffectiveSettings],
    credentials_for: Callable[[str], Credentials],
    exchange: ExchangeSettings,
    *,
    concurrency: int = 8,
) -> list[VolumeResult]:
    from exchange.client import AlphaClient
    from exchange.errors import ExchangeError, SessionExpired

    pairs = list(pairs)
    by_user: dict[str, list[EffectiveSettings]] = {}
    for s in pairs:
        by_user.setdefault(s.user_id, []).append(s)
    sem = asyncio.Semaphore(max(1, concurrency))
    mul: dict[str, Decimal] = {}

    async def multipliers() -> None:
        tokens = {s.target_token for s in pairs if s.volume_basis == "traded"}
        if not tokens:
            return
        async with AlphaClient(
            base_url=exchange.base_url, request_timeout=exchange.request_timeout_seconds
        ) as client:
            for t in await client.token_list():
                if t.symbol in tokens and t.mul_point:
                    mul[t.symbol] = t.mul_point

    async def one(user_id: str, items: list[EffectiveSettings]) -> list[VolumeResult]:
        def result(s: EffectiveSettings, **kw) -> VolumeResult:
            return VolumeResult(
                user_id=user_id,
                strategy_id=s.strategy_id,
                token=s.target_token,
                target=s.target_volume,
                basis=s.volume_basis,
                **kw,
            )

        async with sem:
            try:
                creds = credentials_for(user_id)
                async with AlphaClient(
                    base_url=exchange.base_url,
                    credentials=creds,
                    request_timeout=exchange.request_timeout_seconds,
                ) as client:
                    vol = await client.user_volume()
            except SessionExpired:
                msg = "session expired: log in again and store a fresh session"
                return [result(s, error=msg, session_expired=True) for s in items]
            except (ExchangeError, KeyError, LookupError, OSError) as exc:
                msg = f"{type(exc).__name__}: {exc}"
                return [result(s, error=msg) for s in items]
        out = []
        for s in items:
            current = vol.volume_of(s.target_token)
            if s.volume_basis == "traded":
                m = mul.get(s.target_token)
                if not m:
                    out.append(result(s, error=f"no mulPoint known for {s.target_token}"))
                    continue
                current = current / m
            out.append(result(s, current=current))
        return out

    try:
        await multipliers()
    except Exception:  # the traded-basis rows then report the missing multiplier
        pass
    groups = await asyncio.gather(*(one(u, items) for u, items in by_user.items()))
    return [r for g in groups for r in g]
