"""Benchmark 2: time per round trip of one user process, fill delay 0, interval 0.

The real user process (``python -m userproc``) trades KOGE (mulPoint 1) against a sim
process until a target worth ``trades`` round trips. From the sim's own order record:
round trips per second (first OTO sent -> last sell filled), the gap from each sell's fill
to the next OTO's arrival at the sim (1 ms resolution: the sim stamps orders in whole
milliseconds), and REST calls per round trip (the sim's request counts for the account).
Gaps that span a batch boundary (the planned volume re-read and settle) are reported
apart from the gaps inside a batch; both are in the overall figures.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import EventSink, SimProcess, percentile
from bench.matrix import (
    STARTING_USDT,
    Cell,
    bench_settings,
    full_trade_quote,
    run_seeds,
    run_user_process,
)
from exchange.client import AlphaClient
from exchange.models import ExecutionReport
from exchange.sim.testing import SimAdmin, SimHarness
from exchange.stream import UserStream


def _stats(xs: list[float]) -> dict[str, Any]:
    return {
        "n": len(xs),
        "median_ms": percentile(xs, 50),
        "p99_ms": percentile(xs, 99),
        "max_ms": max(xs) if xs else None,
    }


class Observer:
    """A second user-stream connection of the same account, in this process: the local
    arrival time (perf_counter, sub-millisecond) of every executionReport. The sell's
    FILLED report and the next OTO's NEW report travel the same path, so the difference
    of their arrival times is the sell fill -> next OTO gap at sub-ms resolution (a
    cross-check of the sim's whole-millisecond stamps). Its own REST calls (listen keys)
    are subtracted from the account's request counts."""

    def __init__(self, sim: SimProcess, account: str) -> None:
        self.client = AlphaClient(
            base_url=sim.base_url, credentials=SimHarness().credentials(account)
        )
        self.stream = UserStream(self.client, ws_url=sim.ws_url, initial_backoff=0.05)
        self.first: dict[tuple[str, str], float] = {}  # (order id, status) -> arrival
        self._task: asyncio.Task | None = None
        self.requests = 0

    async def _on(self, ev: object) -> None:
        if isinstance(ev, ExecutionReport):
            self.first.setdefault((ev.order_id, ev.status), time.perf_counter())

    async def __aenter__(self) -> Observer:
        self._task = asyncio.create_task(self.stream.run(self._on))
        if not await self.stream.wait_connected(10):
            raise RuntimeError("observer stream not connected")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.requests = self.client.request_count
        await self.client.close()


def analyse(
    view: dict[str, Any], batches: list[tuple[int, int]], obs: Observer | None = None
) -> dict[str, Any]:
    orders = {int(o["order_id"]): o for o in view["orders"]}
    otos = sorted(
        (o for o in view["orders"] if o.get("position") == "OTO_WORKING"),
        key=lambda o: int(o["order_id"]),
    )

    def filled_ms(o: dict) -> int | None:
        return next((h["time_ms"] for h in o["history"] if h["status"] == "FILLED"), None)

    gaps_all: list[float] = []
    gaps_in: list[float] = []
    gaps_boundary: list[float] = []
    sell_fill: list[int] = []
    for k, w in enumerate(otos):
        sell = orders.get(int(w["order_id"]) + 1)
        t = filled_ms(sell) if sell else None
        if t is not None:
            sell_fill.append(t)
        if k + 1 >= len(otos) or t is None:
            continue
        gap = float(otos[k + 1]["created_ms"] - t)
        gaps_all.append(gap)
        same = k + 1 < len(batches) and batches[k][0] == batches[k + 1][0]
        (gaps_in if same else gaps_boundary).append(gap)
    fine_all: list[float] = []
    fine_in: list[float] = []
    if obs is not None:
        for k in range(len(otos) - 1):
            t_fill = obs.first.get((str(int(otos[k]["order_id"]) + 1), "FILLED"))
            t_next = obs.first.get((str(otos[k + 1]["order_id"]), "NEW"))
            if t_fill is None or t_next is None:
                continue
            gap = (t_next - t_fill) * 1000
            fine_all.append(gap)
            if k + 1 < len(batches) and batches[k][0] == batches[k + 1][0]:
                fine_in.append(gap)
    n = len(otos)
    span = (max(sell_fill) - otos[0]["created_ms"]) / 1000 if otos and sell_fill else None
    reqs = dict(view.get("requests", {}))
    if obs is not None:  # the observer's own listen-key calls are not the user's
        for p in reqs:
            if p.endswith("/get-listen-key"):
                reqs[p] -= obs.requests
    total = sum(reqs.values())
    per_path = {p.rsplit("/", 1)[-1]: round(c / n, 3) for p, c in sorted(reqs.items())} if n else {}
    in_loop = sum(
        c
        for p, c in reqs.items()
        if p.endswith(("/ticker", "/oto-order/place", "/get-user-trades"))
    )
    return {
        "round_trips": n,
        "span_seconds": span,
        "round_trips_per_second": round(n / span, 2) if span else None,
        "sell_fill_to_next_oto": _stats(gaps_all),
        "sell_fill_to_next_oto_within_batch": _stats(gaps_in),
        "sell_fill_to_next_oto_batch_boundary": _stats(gaps_boundary),
        "observer_sell_fill_to_next_oto": _stats(fine_all),
        "observer_sell_fill_to_next_oto_within_batch": _stats(fine_in),
        "rest_calls_total": total,
        "rest_calls_per_round_trip": round(total / n, 3) if n else None,
        "rest_calls_per_round_trip_in_trade_loop": round(in_loop / n, 3) if n else None,
        "rest_calls_per_path_per_round_trip": per_path,
        "batches": len({b for b, _ in batches}),
    }


async def run_latency(quick: bool, log=print) -> dict[str, Any]:
    trades = 150 if quick else 1000
    workdir = Path(tempfile.mkdtemp(prefix="avbench-l-", dir="/tmp"))
    sink = EventSink(f"ipc://{workdir / 'events.ipc'}")
    await sink.start()
    sim = await SimProcess(
        seed=1, fill_delay=0, volume_lag=0, volatility=0, starting_usdt=str(STARTING_USDT)
    ).start()
    t0 = time.monotonic()
    try:
        async with aiohttp.ClientSession() as http:
            admin = SimAdmin(sim.base_url, http)
            price = Decimal((await admin.state())["prices"]["KOGE"])
            credit = full_trade_quote("KOGE", price)
            target = (credit * (trades - 1)).to_integral_value() + 1  # exactly `trades` trades
            user = "lat-1"
            st = bench_settings(
                user,
                "KOGE",
                target,
                strategy_id="lat",
                strategy_name="latency",
                max_retry_attempts=3,  # the defaults of EffectiveSettings, as before
                stop_grace_seconds=30.0,
            )
            async with Observer(sim, user) as obs:
                run = await run_user_process(st, sim, sink, workdir, user, 60 if quick else 240)
            view = await admin.account(user)
            # the seeds' baseline on the same sim, same target, for comparison
            seed_cell = Cell(
                mul=1, counting="buy_mul", lag=0.0, target=int(target), basis="reported"
            )
            seed_run = await run_seeds(
                seed_cell, sim, "lat-seeds", 60 if quick else 240, trades + 50
            )
            seed_view = await admin.account("lat-seeds")
    finally:
        await sink.close()
        await sim.stop()
    res = analyse(view, sink.trades.get(user, []), obs)
    seeds = analyse(seed_view, [(1, i) for i in range(len(seed_view["orders"]))])
    seeds["run"] = seed_run
    if run["exit"] == 0:
        shutil.rmtree(workdir, ignore_errors=True)
    med = res["sell_fill_to_next_oto"]["median_ms"]
    rpt = res["rest_calls_per_round_trip"]
    res.update(
        {
            "target_volume": float(target),
            "seeds_baseline": seeds,
            "run": run,
            "seconds": round(time.monotonic() - t0, 1),
            "bar_median_gap_lt_5ms": {"met": med is not None and med < 5, "value_ms": med},
            "bar_rest_calls_le_2": {
                "met": rpt is not None and rpt <= 2,
                "value": rpt,
                "in_trade_loop": res["rest_calls_per_round_trip_in_trade_loop"],
            },
        }
    )
    log(
        f"  {res['round_trips']} round trips, {res['round_trips_per_second']}/s, "
        f"gap median {med} ms p99 {res['sell_fill_to_next_oto']['p99_ms']} ms, "
        f"{rpt} REST calls per round trip"
    )
    assert math.isfinite(float(target))
    return res
