"""``python -m bench.soak [--kills N]``: ``kill -9`` a trading user process N times (150 by
default) at random moments, with faults on (5xx, slow order replies that still place the
order, dropped stream reports), restarting it each time; then let it finish. From the
sim's own record and the user's journal:

* no duplicate OTO: every OTO on the exchange is exactly one journal trade;
* no lost fill: each journal trade's buy quantity equals what the exchange filled;
* nothing left open, no trade left unfinished in the journal, and every token left is
  the dust the journal accounts for (too little to sell: below the lot step or the
  minimum order).

Writes bench/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sqlite3
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import EventSink, SimProcess, spawn_user
from bench.matrix import BENCH_TUNING
from config.settings import EffectiveSettings, ExchangeSettings, LoggingSettings
from exchange.sim.testing import SimAdmin, SimHarness
from userproc.spec import UserSpec

HERE = Path(__file__).resolve().parent
USER = "soak"
FAULTS = {
    "error_rate": 0.05,  # 503 on 5 % of requests (order POSTs included: outcome unknown)
    "hang_rate": 0.03,  # 3 % answered late: the order IS placed, the reply comes after
    "hang_after": True,  # the client's timeout (1 s): looked up, never re-sent
    "hang_seconds": 1.5,
    "drop_events": 0.1,  # 10 % of stream reports never arrive
}


def _spec(sim: SimProcess, sink: EventSink, workdir: Path, target: Decimal) -> UserSpec:
    return UserSpec(
        user_id=USER,
        settings=[
            EffectiveSettings(
                strategy_id="soak",
                strategy_name="soak",
                user_id=USER,
                target_token="KOGE",
                target_volume=target,
                single_trade_amount_usdt=Decimal(10),
                trade_interval_seconds=0.0,
                order_timeout_seconds=5.0,
                volume_check_delay_seconds=0.2,
                retry_delay_seconds=0.05,
                max_retry_attempts=5,
            )
        ],
        credentials=SimHarness().credentials(USER),
        exchange=ExchangeSettings(
            base_url=sim.base_url, ws_url=sim.ws_url, request_timeout_seconds=1.0
        ),
        journal_path=str(workdir / "soak.sqlite"),
        events_endpoint=sink.endpoint,
        logging=LoggingSettings(level="WARNING", format="json"),
        tuning=BENCH_TUNING,
    )


def _journal(path: Path) -> tuple[dict[str, Decimal], int, Decimal]:
    """(buy quantity recorded per OTO working id, trades without an outcome, the dust
    the journal accounts for)."""
    from userproc.journal import Journal

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT working_id, buy_qty FROM trades WHERE kind='oto' AND placed=1"
        ).fetchall()
        (open_,) = db.execute("SELECT COUNT(*) FROM trades WHERE outcome IS NULL").fetchone()
    finally:
        db.close()
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "a working id recorded twice"
    j = Journal(path)
    dust = j.dust("KOGE")
    j.close()
    return {r[0]: Decimal(r[1] or 0) for r in rows}, int(open_), dust


async def run_soak(kills: int, log: Any = print, seed: int = 1234) -> dict[str, Any]:
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="av-soak-"))
    sim = await SimProcess(fill_delay=0.05, seed=seed).start()
    sink = EventSink(f"ipc://{workdir / 'events.ipc'}")
    await sink.start()
    t0 = time.monotonic()
    try:
        async with aiohttp.ClientSession() as session:
            admin = SimAdmin(sim.base_url, session)
            await admin.set_faults(**FAULTS)
            spec = _spec(sim, sink, workdir, Decimal(10**9))
            for i in range(kills):
                proc = await spawn_user(spec, workdir / "user.log", append=True)
                await asyncio.sleep(rng.uniform(0.3, 2.5))  # a random moment of its life
                proc.kill()
                await proc.wait()
                if (i + 1) % 25 == 0:
                    log(f"  {i + 1} kills, {(await admin.account(USER))['oto_count']} OTOs")
            await admin.set_faults(**{k: 0 if k != "hang_after" else False for k in FAULTS})
            acc = await admin.account(USER)
            final_target = Decimal(acc["volume_now"].get("KOGE", "0")) + 30
            proc = await spawn_user(
                _spec(sim, sink, workdir, final_target), workdir / "user.log", append=True
            )
            exit_code = await asyncio.wait_for(proc.wait(), 120)
            acc = await admin.account(USER)
        journal, unfinished, dust = _journal(workdir / "soak.sqlite")
        sim_otos = {o["order_id"]: o for o in acc["orders"] if o["position"] == "OTO_WORKING"}
        lost = [
            oid for oid, o in sim_otos.items() if journal.get(oid) != Decimal(o["executed_qty"])
        ]
        held = Decimal(acc["balances"].get("ALPHA_22", {}).get("free", "0"))
        res = {
            "kills": kills,
            "faults": FAULTS,
            "seconds": round(time.monotonic() - t0, 1),
            "final_exit": exit_code,
            "otos_on_exchange": len(sim_otos),
            "otos_in_journal": len(journal),
            "duplicate_or_unknown_otos": len(set(sim_otos) ^ set(journal)),
            "fills_not_matching": len(lost),
            "open_orders": acc["open_orders"],
            "unfinished_in_journal": unfinished,
            "tokens_left": str(held),
            "tokens_left_usdt": str((held * 48).quantize(Decimal("0.0001"))),
            "dust_in_journal": str(dust),
        }
        res["held"] = (
            exit_code == 0
            and res["duplicate_or_unknown_otos"] == 0
            and not lost
            and acc["open_orders"] == 0
            and unfinished == 0
            and held == dust  # every token left is accounted for, as dust too small to sell
        )
        log(json.dumps(res, indent=1))
        return res
    finally:
        await sink.close()
        await sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    ap.add_argument("--kills", type=int, default=150)
    args = ap.parse_args()
    res = asyncio.run(run_soak(args.kills))
    (HERE / "soak.json").write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
