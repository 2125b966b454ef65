"""The supervisor's daily check counts a ``target_token: auto`` strategy's volume the way
its user process will: every candidate token (every token when none are given), each
divided by its own mulPoint in the ``traded`` basis. A user already at target that way is
not started."""

from __future__ import annotations

from decimal import Decimal

from config.settings import EffectiveSettings, ExchangeSettings
from exchange.sim.testing import SimHarness
from supervisor.volumes import check_volumes


def pair(sid: str, token: str, target: int, **kw) -> EffectiveSettings:
    return EffectiveSettings(
        strategy_id=sid,
        strategy_name=sid,
        user_id="alice",
        target_token=token,
        target_volume=Decimal(target),
        **kw,
    )


async def test_an_auto_strategy_counts_its_candidates_in_its_basis() -> None:
    async with SimHarness(seed=1) as sim:
        for token, volume in (("AOP", 800), ("TINY", 200), ("KOGE", 300)):
            await sim.admin.set_volume("alice", token, Decimal(volume))
        pairs = [
            pair("fixed", "KOGE", 1000),
            pair("some", "auto", 1000, candidates=("AOP", "TINY", "LIGHT")),
            pair("every", "auto", 1200),
            pair("traded", "auto", 1000, volume_basis="traded"),  # AOP x4, TINY x2, KOGE x1
        ]
        exchange = ExchangeSettings(base_url=sim.base_url, request_timeout_seconds=5)
        res = {r.strategy_id: r for r in await check_volumes(pairs, sim.credentials, exchange)}
    assert res["fixed"].current == 300 and not res["fixed"].at_target
    assert res["some"].current == 1000 and res["some"].at_target
    assert res["every"].current == 1300 and res["every"].at_target
    assert res["traded"].current == 200 + 100 + 300 and not res["traded"].at_target
    assert all(r.error is None for r in res.values())
