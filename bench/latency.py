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
    AMOUNT,
    BUY_OFFSET,
    SELL_PROFIT,
    STARTING_USDT,
    full_trade_quote,
    run_user_process,
)
from config.settings import EffectiveSettings
from exchange.sim.testing import SimAdmin


def _stats(xs: list[float]) -> dict[str, Any]:
    return {
        "n": len(xs),
        "median_ms": percentile(xs, 50),
        "p99_ms": percentile(xs, 99),
        "max_ms": max(xs) if xs else None,
    }


def analyse(view: dict[str, Any], batches: list[tuple[int, int]]) -> dict[str, Any]:
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
    n = len(otos)
    span = (max(sell_fill) - otos[0]["created_ms"]) / 1000 if otos and sell_fill else None
    reqs = view.get("requests", {})
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
            st = EffectiveSettings(
                strategy_id="lat",
                strategy_name="latency",
                user_id=user,
                target_token="KOGE",
                target_volume=Decimal(target),
                single_trade_amount_usdt=AMOUNT,
                trade_interval_seconds=0.0,
                buy_offset_percentage=BUY_OFFSET,
                sell_profit_percentage=SELL_PROFIT,
                order_timeout_seconds=10.0,
                volume_check_delay_seconds=0.3,
                retry_delay_seconds=0.1,
            )
            run = await run_user_process(st, sim, sink, workdir, user, 60 if quick else 240)
            view = await admin.account(user)
    finally:
        await sink.close()
        await sim.stop()
    res = analyse(view, sink.trades.get(user, []))
    if run["exit"] == 0:
        shutil.rmtree(workdir, ignore_errors=True)
    med = res["sell_fill_to_next_oto"]["median_ms"]
    rpt = res["rest_calls_per_round_trip"]
    res.update(
        {
            "target_volume": float(target),
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
