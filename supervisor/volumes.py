"""Every user's volume today, asked concurrently (seed 000: check everyone, then start only
the users under target). Used at the start of each day, for users added by a reload, and
by ``alphavol volumes``.

One ``user_volume`` call per user (not per strategy), bounded concurrency, and one public
token-list call when a strategy counts in ``traded`` units (reported / mulPoint). A
``target_token: auto`` strategy counts the volume of every token it may choose from
(``userproc.scope``).

A reply that cannot be trusted (``BadResponse``: NaN, a negative or absurd volume ...) or
any other failure of one user's check gives that user's rows ``current=None`` and an
``error`` naming the endpoint and the field, so nobody is ever marked "at target" on bad
data; it never raises out of ``check_volumes`` and the other users are unaffected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from config.settings import EffectiveSettings, ExchangeSettings, VolumeBasis
from exchange.auth import Credentials
from exchange.models import UserVolume
from userproc.scope import counted_volume

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class VolumeResult:
    user_id: str
    strategy_id: str
    token: str
    target: Decimal
    basis: VolumeBasis
    current: Decimal | None = None  # None when the check failed
    error: str | None = None
    session_expired: bool = False

    @property
    def at_target(self) -> bool:
        """Only a real figure can be at target (never None, NaN, infinite or negative)."""
        c = self.current
        return c is not None and c.is_finite() and c >= 0 and c >= self.target


def _result(user_id: str, s: EffectiveSettings, **kw: Any) -> VolumeResult:
    return VolumeResult(
        user_id=user_id,
        strategy_id=s.strategy_id,
        token=s.target_token,
        target=s.target_volume,
        basis=s.volume_basis,
        **kw,
    )


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
    mul_error = ""

    async def multipliers() -> None:
        if not any(s.volume_basis == "traded" for s in pairs):
            return
        async with AlphaClient(
            base_url=exchange.base_url, request_timeout=exchange.request_timeout_seconds
        ) as client:
            for t in await client.token_list():
                if t.mul_point:
                    mul[t.symbol] = t.mul_point

    def row(user_id: str, s: EffectiveSettings, vol: UserVolume) -> VolumeResult:
        if s.auto:
            if s.volume_basis == "traded" and not mul:
                return _result(user_id, s, error=f"no mulPoint known{mul_error}")
            return _result(user_id, s, current=counted_volume(s, vol, mul.get))
        reported = vol.volume_of(s.target_token)
        if not reported.is_finite() or reported < 0:  # the client rejects these already
            return _result(user_id, s, error=f"user-volume: {s.target_token} is {reported}")
        if s.volume_basis != "traded":
            return _result(user_id, s, current=reported)
        m = mul.get(s.target_token)
        if not m:
            return _result(user_id, s, error=f"no mulPoint known for {s.target_token}{mul_error}")
        return _result(user_id, s, current=reported / m)

    async def one(user_id: str, items: list[EffectiveSettings]) -> list[VolumeResult]:
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
                msg = (
                    "session expired: log in again in the browser, then"
                    f" `alphavol users add {user_id} --curl FILE`"
                    f" and `alphavol start --user {user_id}`"
                )
                return [_result(user_id, s, error=msg, session_expired=True) for s in items]
            except (ExchangeError, KeyError, LookupError, OSError) as exc:
                # BadResponse included: its message names the endpoint and the field
                msg = f"{type(exc).__name__}: {exc}"
                return [_result(user_id, s, error=msg) for s in items]
        return [row(user_id, s, vol) for s in items]

    async def guarded(user_id: str, items: list[EffectiveSettings]) -> list[VolumeResult]:
        try:
            return await one(user_id, items)
        except Exception as exc:  # a bug or a surprise must not take the other users down
            log.warning("volume_check_error", user_id=user_id, error=type(exc).__name__)
            msg = f"volume check failed: {type(exc).__name__}: {exc}"
            return [_result(user_id, s, error=msg) for s in items]

    try:
        await multipliers()
    except Exception as exc:  # the traded-basis rows then report the missing multiplier
        mul_error = f" ({type(exc).__name__}: {exc})"
    groups = await asyncio.gather(*(guarded(u, items) for u, items in by_user.items()))
    return [r for g in groups for r in g]
