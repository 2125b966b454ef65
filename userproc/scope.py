"""Which of the day's volume a strategy counts towards its target, in its basis.

A fixed ``target_token`` counts that token's volume. ``target_token: auto`` counts every
token it may choose from: its ``candidates``, or every token the exchange reports volume
for when it has none (the day's total, which the points are computed from). The
supervisor's volume check and the user process use this one definition.

``user-volume`` reports volume already multiplied by each token's mulPoint (``reported``);
the ``traded`` basis divides each token's figure by its own multiplier. A token whose
multiplier is not known (no longer in the token list) counts x1.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from config.settings import EffectiveSettings
from exchange.models import UserVolume

ZERO = Decimal(0)


def owned_tokens(st: EffectiveSettings) -> tuple[str, ...]:
    """Tokens whose orders the journal does not know are this strategy's to finish after a
    restart (``recovery.adopt_orphans``): its token, or an auto strategy's candidates (one
    without candidates names none: it may trade any token)."""
    return st.candidates if st.auto else (st.target_token,)


def counted_tokens(st: EffectiveSettings, uv: UserVolume) -> dict[str, Decimal]:
    """The reported volume of every token the strategy counts (plain symbol -> volume)."""
    if not st.auto:
        return {st.target_token: uv.volume_of(st.target_token)}
    if st.candidates:
        return {c: uv.volume_of(c) for c in st.candidates}
    return dict(uv.per_token)


def counted_volume(
    st: EffectiveSettings, uv: UserVolume, mul_of: Callable[[str], Decimal | None]
) -> Decimal:
    """The strategy's volume today in its basis (``mul_of``: today's mulPoint of a token,
    used in the ``traded`` basis only)."""
    per = counted_tokens(st, uv)
    if st.volume_basis != "traded":
        return sum(per.values(), ZERO)
    return sum((v / (mul_of(t) or Decimal(1)) for t, v in per.items() if v), ZERO)
