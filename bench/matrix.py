"""Benchmark 1: planner accuracy, ours (the real user process) beside the seeds' planner.

One sim process per (counting rule, volume lag) pair, fill delay 0, volatility 0. Every
cell gets two fresh sim accounts on that sim: one driven by ``python -m userproc`` with
the cell's settings, one by ``python -m bench.seeds``. All figures come from the sim's
own record afterwards (its orders, its unlagged volume, the account's USDT balance).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from bench.common import PYTHON, EventSink, SimProcess, child_env, spawn_user, stop_process
from config.settings import EffectiveSettings, ExchangeSettings, LoggingSettings
from exchange import ordermath
from exchange.sim.testing import SimAdmin, SimHarness
from exchange.sim.universe import load_scenario
from userproc.spec import UserSpec
from userproc.tuning import Tuning

TOKENS = {1: "KOGE", 4: "AOP"}  # mulPoint in the sim's default universe
AMOUNT = Decimal(30)
STARTING_USDT = Decimal(100000)
BUY_OFFSET = Decimal("0.5")
SELL_PROFIT = Decimal("1.0")

BENCH_TUNING = Tuning(
    # the bench's stand-in supervisor (EventSink) shares its event loop with the
    # measurement, which can stall it for seconds: not what is measured here
    heartbeat_timeout=30.0,
    stream_initial_backoff=0.05,
    stream_max_backoff=0.5,
    settle_poll_seconds=0.1,
    lookup_delay_seconds=0.1,
    post_land_margin_seconds=0.2,
    leftover_sell_timeout_seconds=2.0,
)


@dataclass(frozen=True)
class Cell:
    mul: int
    counting: str
    lag: float
    target: int
    basis: str

    @property
    def token(self) -> str:
        return TOKENS[self.mul]

    @property
    def key(self) -> str:
        lag = f"{self.lag:g}".replace(".", "p")
        return f"m{self.mul}-{self.counting}-l{lag}-t{self.target}-{self.basis[:3]}"

    @property
    def settle(self) -> float:
        """volume_check_delay_seconds: at least the lag."""
        return self.lag + 0.3

    def credit_estimate(self) -> float:
        """Rough credit of one 30 USDT trade in the cell's basis (for scheduling only)."""
        q = 29.85
        per = {"buy_mul": q * self.mul, "buy_nomul": q, "both_mul": 2 * q * self.mul}[self.counting]
        return per / self.mul if self.basis == "traded" else per

    def expected_trades(self, planner: str) -> int:
        if planner == "seeds":
            return math.ceil(self.target / (30 / self.mul))
        return math.ceil(self.target / self.credit_estimate())


def cells(quick: bool) -> list[Cell]:
    if quick:
        muls, countings, lags, targets, bases = (
            (1, 4),
            ("buy_mul", "both_mul"),
            (0.0, 1.0),
            (100, 1000),
            ("reported",),
        )
    else:
        muls, countings, lags, targets, bases = (
            (1, 4),
            ("buy_mul", "buy_nomul", "both_mul"),
            (0.0, 1.0, 3.0),
            (100, 1000, 16384),
            ("reported", "traded"),
        )
    return [Cell(*c) for c in itertools.product(muls, countings, lags, targets, bases)]


# ------------------------------------------------------------------ analysis (sim record)
def full_trade_quote(token: str, price: Decimal) -> Decimal:
    """USDT a full 30 USDT round trip's buy spends at ``price`` (limit at the offset,
    quantity floored to the lot step, filled at the market price)."""
    spec = next(t for t in load_scenario(None).tokens if t.symbol == token)
    buy = ordermath.round_price(price * (1 + BUY_OFFSET / 100), spec.tick_size, "BUY")
    qty = ordermath.floor_qty(AMOUNT / buy, spec.step_size)
    return ordermath.payment_amount(price, qty)


def analyse(view: dict[str, Any], cell: Cell, price: Decimal) -> dict[str, Any]:
    """Trades, credit per trade, final volume, overshoot and cost from the sim's record.

    The credit of a trade is what the sim's counting rule granted for its fills (in the
    cell's basis); a full trade's credit is the granted credit per USDT of buy quote times
    the quote of a full 30 USDT buy (ours shrinks its last trade, so the largest trade seen
    is not always a full one)."""
    orders = {o["order_id"]: o for o in view["orders"]}
    credits: list[Decimal] = []
    quotes: list[Decimal] = []
    buys = 0
    for o in view["orders"]:
        if o.get("position") != "OTO_WORKING" or Decimal(o["executed_qty"]) <= 0:
            continue
        buys += 1
        bq = Decimal(o["cum_quote"])
        sell = orders.get(str(int(o["order_id"]) + 1))
        sq = Decimal(sell["cum_quote"]) if sell else Decimal(0)
        if cell.counting == "buy_mul":
            c = bq * cell.mul
        elif cell.counting == "buy_nomul":
            c = bq
        else:
            c = (bq + sq) * cell.mul
        credits.append(c / cell.mul if cell.basis == "traded" else c)
        quotes.append(bq)
    reported = Decimal(view["volume_now"].get(cell.token, "0"))
    final = reported / cell.mul if cell.basis == "traded" else reported
    granted = sum(credits, Decimal(0))
    bought = sum(quotes, Decimal(0))
    full = granted / bought * full_trade_quote(cell.token, price) if bought > 0 else Decimal(0)
    target = Decimal(cell.target)
    bal = view["balances"]
    usdt = Decimal(bal["USDT"]["free"]) + Decimal(bal["USDT"]["locked"])
    token_left = sum(
        (Decimal(b["free"]) + Decimal(b["locked"]))
        for a, b in bal.items()
        if b.get("symbol") == cell.token
    )
    over = final - target
    return {
        "trades": buys,
        "credit_per_trade": float(round(full, 6)),
        "min_trades": math.ceil(target / full) if full > 0 else None,
        "final_volume": float(round(final, 6)),
        "reached": final >= target,
        "over_usdt": float(round(over, 6)),
        "over_trades": float(round(over / full, 4)) if full > 0 else None,
        "cost_usdt": float(round(STARTING_USDT - usdt, 8)),
        "token_left": float(token_left),
        "token_left_usdt": float(round(token_left * price, 8)),
        "credit_sum_matches": abs(granted - final) < Decimal("0.0001"),
        "requests": sum(view.get("requests", {}).values()),
        "open_orders": view.get("open_orders", 0),
    }


# ------------------------------------------------------------------ runners
def bench_settings(user: str, token: str, target: Decimal | int, **kw: Any) -> EffectiveSettings:
    """One strategy as the benchmarks run it: 30 USDT trades back to back, the default
    offsets, short timeouts (``kw`` overrides, e.g. the settle window)."""
    base: dict[str, Any] = dict(
        strategy_id="bench",
        strategy_name=f"bench {token}",
        single_trade_amount_usdt=AMOUNT,
        trade_interval_seconds=0.0,
        buy_offset_percentage=BUY_OFFSET,
        sell_profit_percentage=SELL_PROFIT,
        order_timeout_seconds=10.0,
        volume_check_delay_seconds=0.3,
        max_retry_attempts=3,
        retry_delay_seconds=0.1,
        stop_grace_seconds=5.0,
    )
    base.update(kw)
    return EffectiveSettings(
        user_id=user, target_token=token, target_volume=Decimal(target), **base
    )


def _settings(cell: Cell, user: str) -> EffectiveSettings:
    return bench_settings(
        user,
        cell.token,
        cell.target,
        strategy_name=cell.key,
        volume_basis=cell.basis,
        volume_check_delay_seconds=cell.settle,
    )


async def run_ours(
    cell: Cell, sim: SimProcess, sink: EventSink, workdir: Path, user: str, max_seconds: float
) -> dict[str, Any]:
    return await run_user_process(_settings(cell, user), sim, sink, workdir, user, max_seconds)


async def run_user_process(
    settings: EffectiveSettings,
    sim: SimProcess,
    sink: EventSink,
    workdir: Path,
    user: str,
    max_seconds: float,
) -> dict[str, Any]:
    """The real user process (``python -m userproc``, spec on stdin) until it exits."""
    spec = UserSpec(
        user_id=user,
        settings=[settings],
        credentials=SimHarness().credentials(user),
        exchange=ExchangeSettings(
            base_url=sim.base_url, ws_url=sim.ws_url, request_timeout_seconds=5.0
        ),
        journal_path=str(workdir / f"{user}.sqlite"),
        events_endpoint=sink.endpoint,
        logging=LoggingSettings(level="WARNING", format="json"),
        tuning=BENCH_TUNING,
    )
    t0 = time.monotonic()
    proc = await spawn_user(spec, workdir / f"{user}.stderr")
    timed_out = False
    try:
        await asyncio.wait_for(proc.wait(), max_seconds)
    except TimeoutError:
        timed_out = True
        await stop_process(proc, 5.0)
    summ = sink.summaries.get(user)
    return {
        "seconds": round(time.monotonic() - t0, 3),
        "exit": proc.returncode,
        "timed_out": timed_out,
        "reason": summ.reason if summ else None,
        "errors": sink.errors.get(user, [])[:3],
    }


async def run_seeds(
    cell: Cell, sim: SimProcess, user: str, max_seconds: float, max_trades: int
) -> dict[str, Any]:
    creds = SimHarness().credentials(user)
    job = {
        "base_url": sim.base_url,
        "ws_url": sim.ws_url,
        "cookies": creds.cookies,
        "headers": creds.headers,
        "token": cell.token,
        "target": cell.target,
        "amount": str(AMOUNT),
        "basis": cell.basis,
        "settle_seconds": cell.settle,
        "buy_offset": str(BUY_OFFSET),
        "sell_profit": str(SELL_PROFIT),
        "max_trades": max_trades,
        "max_seconds": max_seconds,
    }
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "bench.seeds",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=child_env(),
    )
    try:
        out, _ = await asyncio.wait_for(
            proc.communicate(json.dumps(job).encode()), max_seconds + 30
        )
        res = json.loads(out.decode().strip().splitlines()[-1]) if out else {"error": "no output"}
    except TimeoutError:
        await stop_process(proc, 5.0)
        res = {"error": "timed out"}
    res["seconds"] = round(time.monotonic() - t0, 3)
    return res


async def run_matrix(quick: bool, log=print) -> dict[str, Any]:
    todo = cells(quick)
    configs = sorted({(c.counting, c.lag) for c in todo})
    workdir = Path(tempfile.mkdtemp(prefix="avbench-m-", dir="/tmp"))
    sink = EventSink(f"ipc://{workdir / 'events.ipc'}")
    await sink.start()
    sims: dict[tuple[str, float], SimProcess] = {}
    t_start = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    concurrency = 6 if quick else 8
    max_seconds = 60.0 if quick else 420.0
    try:
        for counting, lag in configs:
            sims[(counting, lag)] = await SimProcess(
                seed=1,
                fill_delay=0,
                volume_lag=lag,
                counting=counting,
                volatility=0,
                starting_usdt=str(STARTING_USDT),
            ).start()
        async with aiohttp.ClientSession() as http:
            admins = {k: SimAdmin(s.base_url, http) for k, s in sims.items()}
            jobs = [(c, p) for c in todo for p in ("ours", "seeds")]
            jobs.sort(key=lambda j: -j[0].expected_trades(j[1]))
            sem = asyncio.Semaphore(concurrency)
            n = itertools.count(1)

            async def one(cell: Cell, planner: str) -> None:
                async with sem:
                    sim = sims[(cell.counting, cell.lag)]
                    user = f"{planner[0]}-{cell.key}"
                    if planner == "ours":
                        run = await run_ours(cell, sim, sink, workdir, user, max_seconds)
                    else:
                        run = await run_seeds(cell, sim, user, max_seconds, 6000)
                    admin = admins[(cell.counting, cell.lag)]
                    state = await admin.state()
                    price = Decimal(state["prices"][cell.token])
                    view = await admin.account(user)
                    row = {**analyse(view, cell, price), "run": run}
                    results.setdefault(cell.key, {"cell": cell.__dict__})[planner] = row
                    log(
                        f"  [{next(n)}/{len(jobs)}] {planner:5s} {cell.key}: "
                        f"{row['trades']} trades (min {row['min_trades']}), "
                        f"over {row['over_trades']} trades, {run['seconds']}s"
                    )

            await asyncio.gather(*(one(c, p) for c, p in jobs))
    finally:
        await sink.close()
        for s in sims.values():
            await s.stop()
    ordered = [results[c.key] for c in todo if c.key in results]
    if len(ordered) == len(todo):  # keep the journals and stderr files only after a failure
        shutil.rmtree(workdir, ignore_errors=True)
    ours_ok = [
        r["ours"]["reached"]
        and r["ours"]["over_trades"] is not None
        and r["ours"]["over_trades"] <= 1
        for r in ordered
        if "ours" in r
    ]
    return {
        "cells": ordered,
        "seconds": round(time.monotonic() - t_start, 1),
        "concurrency": concurrency,
        "bar_overshoot_le_1_trade": {
            "met": all(ours_ok) and len(ours_ok) == len(todo),
            "cells_ok": sum(ours_ok),
            "cells": len(todo),
        },
    }


async def run_one(key: str, reps: int, settle_poll: float | None, log=print) -> list[dict]:
    """One cell of ours, ``reps`` times on one fresh sim (for reproducing a cell)."""
    global BENCH_TUNING
    cell = next(c for c in cells(False) if c.key == key)
    if settle_poll is not None:
        BENCH_TUNING = msgspec.structs.replace(BENCH_TUNING, settle_poll_seconds=settle_poll)
    workdir = Path(tempfile.mkdtemp(prefix="avbench-c-", dir="/tmp"))
    sink = EventSink(f"ipc://{workdir / 'events.ipc'}")
    await sink.start()
    sim = await SimProcess(
        seed=1,
        fill_delay=0,
        volume_lag=cell.lag,
        counting=cell.counting,
        volatility=0,
        starting_usdt=str(STARTING_USDT),
    ).start()
    rows = []
    try:
        async with aiohttp.ClientSession() as http:
            admin = SimAdmin(sim.base_url, http)
            for i in range(reps):
                user = f"r{i}-{cell.key}"
                run = await run_ours(cell, sim, sink, workdir, user, 420)
                price = Decimal((await admin.state())["prices"][cell.token])
                row = {**analyse(await admin.account(user), cell, price), "run": run}
                rows.append(row)
                log(
                    f"{key} #{i}: {row['trades']} trades (min {row['min_trades']}), over "
                    f"{row['over_usdt']} = {row['over_trades']} trades' credit, exit {run['exit']}"
                )
    finally:
        await sink.close()
        await sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


if __name__ == "__main__":  # python -m bench.matrix --cell KEY [--reps N] [--settle-poll S]
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.matrix")
    ap.add_argument("--cell", required=True, help="e.g. m4-buy_nomul-l1-t16384-tra")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument(
        "--settle-poll", type=float, default=None, help="Tuning.settle_poll_seconds of ours"
    )
    a = ap.parse_args()
    asyncio.run(run_one(a.cell, a.reps, a.settle_poll))
