"""The daily summary after the UTC day changes: the real supervisor in this process (its
clock an ``OffsetClock`` the test moves, as in test_daily_cycle), real user processes
trading on the sim, and a real local receiver."""

from __future__ import annotations

import asyncio
import io
import math
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from config.credentials import CredentialStore
from config.loader import load_config
from exchange.client import AlphaClient
from exchange.clock import OffsetClock
from supervisor.arbiter import Arbiter
from supervisor.daily import POLL_SECONDS
from tests.notify_receiver import Receiver
from tests.supervisor.harness import strategy
from tests.supervisor.test_real_users import FAST

OWNERS = {"1": "daily-owner-one", "2": "daily-owner-two"}


async def exchange_score(sim, account: str, day: str) -> int:
    async with AlphaClient(base_url=sim.base_url, credentials=sim.credentials(account)) as c:
        (row,) = [d for d in (await c.user_score()).days if d.date == day]
    return int(row.alpha_volume_score)


async def test_the_daily_summary_is_sent_once_after_the_utc_day_changes(deploy, sim, monkeypatch):
    monkeypatch.setenv("ALPHAVOL_TUNING", FAST)
    monkeypatch.setenv("ALPHAVOL_SUMMARY_DELAY", "0")
    async with Receiver() as rx:
        d = deploy()
        d.store({u: sim.credentials(a) for u, a in OWNERS.items()})
        d.write_config(
            [strategy("koge", ["1", "2"], target=150, amount=10)],
            sections={"notify": {"urls": [rx.url()], "events": ["daily_summary"]}},
        )
        clock = OffsetClock(0)
        arb = Arbiter(
            load_config(d.config_path),
            credentials=CredentialStore(d.data / "credentials.sqlite", key=d.key),
            clock=clock,
            out=io.StringIO(),
        )
        day = clock.utc_day().isoformat()
        task = asyncio.create_task(arb.run())
        async with asyncio.timeout(60):
            while arb.phase != "waiting_next_day":  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert not rx.messages("daily summary")  # nothing before the day ends
        # the day ends: first on the exchange (it closes the day and scores it) ...
        now = datetime.now(tz=UTC)
        midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        await sim.admin.advance_time((midnight - now).total_seconds() + 2)
        # ... then for the supervisor
        clock.offset = midnight.timestamp() + 0.5 - time.time()
        (msg,) = await rx.wait(lambda r: r.messages("daily summary"), 15, "the summary")
        # a few more of the summary loop's checks go by: it does not say it again
        await asyncio.sleep(3 * POLL_SECONDS)
        arb.request_shutdown()
        assert await asyncio.wait_for(task, 30) == 0

    assert len(rx.messages("daily summary")) == 1
    assert day in msg["title"]
    lines = msg["message"].splitlines()
    for user, account in OWNERS.items():
        a = await sim.admin.account(account)
        (line,) = [x for x in lines if x.startswith(f"user {user}:")]
        volume = Decimal(a["volume_today"].get("KOGE", "0") or 0)
        assert volume == 0  # the sim's day moved on; the summary is about the day before
        orders = [o for o in a["orders"] if o["side"] == "BUY"]
        credited = sum((Decimal(o["cum_quote"]) for o in orders), Decimal(0))
        ours = math.floor(math.log2(credited))
        theirs = await exchange_score(sim, account, day)
        assert f"{ours} points (exchange: {theirs})" in line, line
        assert f"{a['oto_count']} round trips" in line
        assert re.search(r"koge KOGE [\d,.]+ / 150", line)
        lost = Decimal(sim.sim.starting_usdt) - Decimal(a["balances"]["USDT"]["free"])
        assert f"cost {lost.quantize(Decimal('0.0001'))} USDT" in line
        assert "USDT per point" in line
