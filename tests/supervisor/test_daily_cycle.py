"""Without --once the supervisor starts the day again after the UTC reset (+ offset).

In-process, with an offset clock half a second before midnight, so the next day comes at
once; user processes are the protocol stand-in, forked for real."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

from config.credentials import CredentialStore
from config.loader import load_config
from exchange.clock import OffsetClock
from supervisor.arbiter import Arbiter
from supervisor.restart import RestartPolicy
from supervisor.spawn import Spawner
from supervisor.states import State
from tests.supervisor.harness import STANDIN, strategy


async def test_the_day_starts_again_after_the_utc_reset(deploy, sim):
    d = deploy()
    d.store({"1": sim.credentials("acct1")})
    d.write_config([strategy("s1", ["1"], target=30, amount=10)])
    text = d.config_path.read_text().replace("offset_seconds: 300", "offset_seconds: 0")
    d.config_path.write_text(text)
    config = load_config(d.config_path)
    now = datetime.now(tz=UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    clock = OffsetClock(midnight.timestamp() - 1.5 - now.timestamp())
    out = io.StringIO()
    arb = Arbiter(
        config,
        once=False,
        credentials=CredentialStore(d.data / "credentials.sqlite", key=d.key),
        clock=clock,
        policy=RestartPolicy(initial_delay=0.05),
        spawner=Spawner(target=STANDIN),
        out=out,
    )
    first_day = clock.utc_day().isoformat()
    task = asyncio.create_task(arb.run())
    async with asyncio.timeout(30):
        while not (arb.day != first_day and arb.phase == "waiting_next_day"):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    rec = arb.records["1"]
    assert rec.state in (State.DONE, State.SKIPPED)
    edges = [t.edge for t in rec.sm.history]
    # day one ran; the new day put the user back in the queue and ran it again
    assert edges == ["spawn", "hello", "exited_done", "requeue", "spawn", "hello", "exited_done"]
    assert [t.reason for t in rec.sm.history if t.edge == "requeue"] == ["new day"]
    assert arb.next_run_at is not None and arb.next_run_at > clock.time() + 3600
    arb.request_shutdown()
    assert await asyncio.wait_for(task, 20) == 0
