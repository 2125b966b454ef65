"""Benchmark 4: what a point costs. USDT per Alpha point of a 14-point day (16,384 reported
volume) on the simulated exchange's default universe with its spreads and volatilities
(8 tokens: x1, x2 and x4, 1 to 25 bp wide), side by side in one run on one sim:

* our user process on a fixed x1 token (KOGE) and on a fixed x4 token (AOP);
* ``target_token: auto`` (our user process choosing the token batch by batch);
* the seeds' planner (bench/seeds.py) on the fixed x1 token;
* our user process on every other token of the universe, fixed: the best of all fixed
  tokens is the best single token chosen with hindsight.

Each run is a fresh account of 100,000 USDT. Figures from the sim's own record: cost =
USDT lost (the start balance - USDT now - the tokens still held, valued at the bid);
points = floor(log2(the day's reported volume, every token)); USDT per point = cost /
points. Goals (issue 14): auto at most 30 % of the fixed x1 token's USDT per point, and
within 10 % of the best single token.

``python -m bench.cost`` runs it alone: it merges its section into bench/results.json and
renders bench/RESULTS.md again (the other sections stay as the last full run left them).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import EventSink, SimProcess, loadavg, machine, tree_state
from bench.matrix import AMOUNT, Cell, bench_settings, run_seeds, run_user_process
from exchange.points import volume_points
from exchange.sim.testing import SimAdmin

STARTING_USDT = Decimal(100000)
FIXED_X1, FIXED_X4 = "KOGE", "AOP"
GOAL_VS_X1 = 0.30  # auto at most 30 % of the fixed x1 token's USDT per point
GOAL_VS_BEST = 0.10  # and within 10 % of the best single token
CONCURRENCY = 4


def analyse(view: dict[str, Any], state: dict[str, Any], target: int) -> dict[str, Any]:
    """Cost, volume, points and trades of one account, from the sim's record."""
    bal = view["balances"]
    usdt = Decimal(bal["USDT"]["free"]) + Decimal(bal["USDT"]["locked"])
    held = {
        b["symbol"]: Decimal(b["free"]) + Decimal(b["locked"])
        for a, b in bal.items()
        if a != "USDT" and b.get("symbol") in state["tokens"]
    }
    held_value = sum((q * Decimal(state["tokens"][t]["bid"]) for t, q in held.items()), Decimal(0))
    cost = STARTING_USDT - usdt - held_value
    volume = sum((Decimal(v) for v in view["volume_now"].values()), Decimal(0))
    points = volume_points(volume)
    buys = [
        o
        for o in view["orders"]
        if o.get("position") == "OTO_WORKING" and Decimal(o["executed_qty"]) > 0
    ]
    tokens: list[str] = []
    for o in sorted(buys, key=lambda o: int(o["order_id"])):
        if not tokens or tokens[-1] != o["token"]:
            tokens.append(o["token"])
    bought = sum((Decimal(o["cum_quote"]) for o in buys), Decimal(0))
    return {
        "trades": len(buys),
        "tokens": tokens,  # in the order traded (a switch adds one)
        "volume": float(round(volume, 4)),
        "over": float(round(volume - target, 4)),
        "points": points,
        "reached": volume >= target,
        "bought_usdt": float(round(bought, 4)),
        "cost_usdt": float(round(cost, 6)),
        "held_value_usdt": float(round(held_value, 6)),
        "usdt_per_point": float(round(cost / points, 6)) if points else None,
        "cost_bp_per_credited_usdt": float(round(cost / volume * 10000, 4)) if volume else None,
        "open_orders": view.get("open_orders", 0),
        "requests": sum(view.get("requests", {}).values()),
    }


async def run_cost(quick: bool, log=print) -> dict[str, Any]:
    points = 11 if quick else 14
    target = 2**points
    t0 = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="avbench-cost-", dir="/tmp"))
    sink = EventSink(f"ipc://{workdir / 'events.ipc'}")
    await sink.start()
    sim = await SimProcess(
        seed=1, fill_delay=0, volume_lag=0, starting_usdt=str(STARTING_USDT)
    ).start()
    results: dict[str, dict[str, Any]] = {}
    max_seconds = 120.0 if quick else 420.0
    try:
        async with aiohttp.ClientSession() as http:
            admin = SimAdmin(sim.base_url, http)
            start = await admin.state()
            universe = list(start["tokens"])
            fixed = (
                [FIXED_X1, FIXED_X4]
                if quick
                else [FIXED_X1, FIXED_X4] + [t for t in universe if t not in (FIXED_X1, FIXED_X4)]
            )
            jobs = [("auto", "auto"), ("seeds", FIXED_X1)] + [("fixed", t) for t in fixed]
            # the longest first: x1 tokens need four times the round trips of x4 ones
            jobs.sort(key=lambda j: start["mul_points"].get(j[1], 4))
            sem = asyncio.Semaphore(CONCURRENCY)

            async def one(kind: str, token: str) -> None:
                async with sem:
                    user = f"{kind}-{token}"
                    if kind == "seeds":
                        cell = Cell(1, "buy_mul", 0.0, target, "reported")
                        assert cell.token == token
                        run = await run_seeds(cell, sim, user, max_seconds, 8000)
                    else:
                        st = bench_settings(user, token, target, strategy_id="cost")
                        run = await run_user_process(st, sim, sink, workdir, user, max_seconds)
                    state = await admin.state()
                    row = {**analyse(await admin.account(user), state, target), "run": run}
                    if kind == "auto":
                        row["chosen"] = [
                            {
                                "token": c.token,
                                "mul_point": float(c.mul_point),
                                "expected_bp_per_credited_usdt": float(
                                    round(c.cost_per_credit * 10000, 4)
                                ),
                                "previous": c.previous,
                            }
                            for c in sink.chosen.get(user, [])
                        ]
                    results[user] = {"kind": kind, "token": token, **row}
                    log(
                        f"  {user}: {row['trades']} trades on {'+'.join(row['tokens'])}, "
                        f"{row['points']} points, cost {row['cost_usdt']:.4f} USDT = "
                        f"{row['usdt_per_point']} USDT/point, {run['seconds']} s"
                    )

            await asyncio.gather(*(one(k, t) for k, t in jobs))
            end = await admin.state()
    finally:
        await sink.close()
        await sim.stop()
    if all(r["run"].get("exit", 0) == 0 and not r["run"].get("error") for r in results.values()):
        shutil.rmtree(workdir, ignore_errors=True)  # keep the logs only after a failure
    return summarise(results, start, end, target, points, time.monotonic() - t0)


def summarise(
    results: dict[str, dict[str, Any]],
    start: dict[str, Any],
    end: dict[str, Any],
    target: int,
    points: int,
    seconds: float,
) -> dict[str, Any]:
    def per_point(key: str) -> float | None:
        r = results.get(key)
        return r["usdt_per_point"] if r and r["points"] >= points else None

    x1, x4 = per_point(f"fixed-{FIXED_X1}"), per_point(f"fixed-{FIXED_X4}")
    auto, seeds = per_point("auto-auto"), per_point(f"seeds-{FIXED_X1}")
    fixed = {
        r["token"]: r["usdt_per_point"]
        for r in results.values()
        if r["kind"] == "fixed" and r["points"] >= points and r["usdt_per_point"] is not None
    }
    best_token = min(fixed, key=lambda t: fixed[t]) if fixed else None
    best = fixed.get(best_token) if best_token else None
    ratio_x1 = auto / x1 if auto is not None and x1 else None
    ratio_best = auto / best - 1 if auto is not None and best else None
    book = {
        t: {
            "mul_point": start["mul_points"][t],
            "mul_point_at_end": end["mul_points"][t],
            "spread_bp": round(
                float(
                    (Decimal(v["ask"]) - Decimal(v["bid"]))
                    / ((Decimal(v["ask"]) + Decimal(v["bid"])) / 2)
                    * 10000
                ),
                3,
            ),
            "volatility": v["volatility"],
            "chain": v["chain_name"],
        }
        for t, v in start["tokens"].items()
    }
    return {
        "target_volume": target,
        "points": points,
        "amount_usdt": float(AMOUNT),
        "concurrency": CONCURRENCY,
        "seconds": round(seconds, 1),
        "universe": book,
        "runs": [results[k] for k in sorted(results)],
        "usdt_per_point": {
            f"fixed x1 ({FIXED_X1})": x1,
            f"fixed x4 ({FIXED_X4})": x4,
            "auto": auto,
            f"seeds' planner, fixed x1 ({FIXED_X1})": seeds,
            f"best single token ({best_token}, hindsight)": best,
        },
        "best_token": best_token,
        "goal_auto_le_30pct_of_x1": {
            "ratio": round(ratio_x1, 4) if ratio_x1 is not None else None,
            "met": ratio_x1 is not None and ratio_x1 <= GOAL_VS_X1,
        },
        "goal_auto_within_10pct_of_best": {
            "excess": round(ratio_best, 4) if ratio_best is not None else None,
            "met": ratio_best is not None and ratio_best <= GOAL_VS_BEST,
        },
    }


def merge_and_render(section: dict[str, Any], out: Path, quick: bool) -> Path:
    """Put this run's section into results(.json) and render RESULTS(.md) again."""
    from bench.notes import missed_notes
    from bench.report import render

    suffix = "-quick" if quick else ""
    jpath = out / f"results{suffix}.json"
    res: dict[str, Any] = json.loads(jpath.read_text()) if jpath.exists() else {}
    res.setdefault("machine", machine())
    res.setdefault("command", "python -m bench.cost")
    res.setdefault("seconds", section["seconds"])
    res["cost"] = section
    jpath.write_text(json.dumps(res, indent=1, default=str) + "\n")
    hpath = out / "history.jsonl"
    hist = (
        [json.loads(line) for line in hpath.read_text().splitlines() if line.strip()]
        if hpath.exists() and not quick
        else []
    )
    mpath = out / f"RESULTS{suffix}.md"
    mpath.write_text(render(res, missed_notes(res), hist))
    return mpath


def main(argv: list[str] | None = None) -> int:
    import argparse

    from config.logsetup import configure_logging

    ap = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="11 points, KOGE/AOP/auto/seeds only")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = ap.parse_args(argv)
    configure_logging("WARNING", "console", stream=sys.stderr)
    load = loadavg()
    tree0 = tree_state()
    section = asyncio.run(run_cost(args.quick, lambda *a: print(*a, flush=True)))
    section["loadavg_before"] = load
    section["run"] = {
        "date_utc": machine()["date_utc"],
        "command": "python -m bench.cost" + (" --quick" if args.quick else ""),
        "tree": {"start": tree0, "end": tree_state()},
    }
    for name, value in section["usdt_per_point"].items():
        print(f"{name}: {value} USDT per point")
    for key in ("goal_auto_le_30pct_of_x1", "goal_auto_within_10pct_of_best"):
        print(f"{key}: {section[key]}")
    print(f"written: {merge_and_render(section, Path(args.out), args.quick)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
