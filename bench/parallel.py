"""``python -m bench.parallel``: one user with two strategies (KOGE x1 and AOP x4), run one
after another and then side by side (``parallel_strategies``), each in a fresh simulated
exchange process with a realistic fill delay. Prints the wall time of each and writes
bench/parallel.json.

The real user process (``python -m userproc``) runs each time; from the sim's record:
OTOs placed, the final volume of each token against its target (in trades' credit), and
whether anything was left open.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import EventSink, SimProcess, spawn_user, stop_process
from bench.matrix import BENCH_TUNING
from config.settings import EffectiveSettings, ExchangeSettings, LoggingSettings
from exchange.sim.testing import SimAdmin, SimHarness
from userproc.spec import UserSpec

HERE = Path(__file__).resolve().parent
AMOUNT = Decimal(10)
TARGETS = {"KOGE": Decimal(300), "AOP": Decimal(1200)}  # about 30 round trips each
MUL = {"KOGE": 1, "AOP": 4}
FILL_DELAY = 0.2  # seconds per leg: a round trip takes about 0.4 s


def _settings(user: str) -> list[EffectiveSettings]:
    return [
        EffectiveSettings(
            strategy_id=token.lower(),
            strategy_name=token,
            user_id=user,
            target_token=token,
            target_volume=target,
            single_trade_amount_usdt=AMOUNT,
            trade_interval_seconds=0.0,
            order_timeout_seconds=30.0,
            volume_check_delay_seconds=0.3,
            retry_delay_seconds=0.2,
        )
        for token, target in TARGETS.items()
    ]


async def _one(parallel: bool, workdir: Path) -> dict[str, Any]:
    user = "bench-par" if parallel else "bench-seq"
    sim = await SimProcess(fill_delay=FILL_DELAY, volume_lag=0.2, seed=3).start()
    sink = EventSink(f"ipc://{workdir / (user + '.ipc')}")
    await sink.start()
    try:
        spec = UserSpec(
            user_id=user,
            settings=_settings(user),
            credentials=SimHarness().credentials(user),
            exchange=ExchangeSettings(base_url=sim.base_url, ws_url=sim.ws_url),
            journal_path=str(workdir / f"{user}.sqlite"),
            events_endpoint=sink.endpoint,
            logging=LoggingSettings(level="WARNING", format="json"),
            tuning=BENCH_TUNING,
            parallel_strategies=parallel,
        )
        t0 = time.monotonic()
        proc = await spawn_user(spec, workdir / f"{user}.stderr")
        try:
            await asyncio.wait_for(proc.wait(), 300)
        finally:
            await stop_process(proc, 5.0)
        seconds = time.monotonic() - t0
        async with aiohttp.ClientSession() as session:
            acc = await SimAdmin(sim.base_url, session).account(user)
        over = {}
        for token, target in TARGETS.items():
            final = Decimal(acc["volume_now"].get(token, "0"))
            credit = AMOUNT / Decimal("1.005") * MUL[token]
            over[token] = round(float((final - target) / credit), 3)
        return {
            "mode": "side by side" if parallel else "one after another",
            "seconds": round(seconds, 2),
            "exit": proc.returncode,
            "otos": acc["oto_count"],
            "open_orders": acc["open_orders"],
            "trades_over_target": over,
        }
    finally:
        await sink.close()
        await sim.stop()


async def run_parallel(log: Any = print) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="av-bench-par-"))
    try:
        seq = await _one(False, workdir)
        log(f"  one after another: {seq['seconds']} s, {seq['otos']} OTOs")
        par = await _one(True, workdir)
        log(f"  side by side:      {par['seconds']} s, {par['otos']} OTOs")
        return {
            "fill_delay_seconds": FILL_DELAY,
            "targets": {k: str(v) for k, v in TARGETS.items()},
            "runs": [seq, par],
            "speedup": round(seq["seconds"] / par["seconds"], 2) if par["seconds"] else None,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    res = asyncio.run(run_parallel())
    (HERE / "parallel.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
