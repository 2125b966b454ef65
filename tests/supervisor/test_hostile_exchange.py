"""The real supervisor and real user processes behind a hostile proxy (every part a
subprocess): one user's exchange replies are poisoned, the supervisor and the other user
carry on."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.hostile_proxy import ProxyProcess
from tests.supervisor.harness import Deployment, strategy
from tests.supervisor.test_real_users import FAST, acct

POISON = "user-volume: data.totalVolume is NaN"


@pytest.fixture
async def proxy(sim, tmp_path):
    async with ProxyProcess(sim.base_url, tmp_path) as p:
        yield p


async def test_nan_in_one_users_volume_the_supervisor_runs_on_the_other_reaches_target(sim, proxy):
    proxy.set_rules(
        {"path": "user-volume", "account": acct("1"), "field": "data.totalVolume", "value": "NaN"}
    )
    d = Deployment(base_url=proxy.base_url, ws_url=sim.ws_url)
    try:
        d.store({u: sim.credentials(acct(u)) for u in ("1", "2")})
        d.write_config(
            [
                strategy(
                    "koge",
                    ["1", "2"],
                    target=60,
                    amount=10,
                    max_retry_attempts=1,
                    retry_delay_seconds=0.05,
                )
            ]
        )
        d.start(child=None, ALPHAVOL_TUNING=FAST)
        await d.wait_ready()
        users = await d.wait_users(
            lambda us: us[("koge", "2")].state == "DONE", 60, "user 2 done while 1 is poisoned"
        )
        poisoned = users[("koge", "1")]
        assert poisoned.state != "SKIPPED"  # never "at target" on a NaN
        assert POISON in (poisoned.last_error or "") + (poisoned.reason or ""), poisoned
        assert await d.wait_exit(60) == 1, d.diagnose()  # --once, one user FATAL
        out = d.stdout
        assert "user 2 koge: DONE" in out
        fatal = next(line for line in out.splitlines() if "user 1 koge:" in line)
        assert "FATAL" in fatal and POISON in fatal, out
        assert d.events("supervisor_exited")[-1]["code"] == 1  # an orderly exit, no crash
        one, two = [await sim.admin.account(acct(u)) for u in ("1", "2")]
        assert one["oto_count"] == 0  # no order on bad data
        assert Decimal(two["volume_now"]["KOGE"]) >= 60 and two["open_orders"] == 0
    finally:
        d.cleanup()
