"""``python -m bench [--quick] [--only matrix,latency,scale,cost,failover]``: run the benchmarks
against the simulated exchange and write bench/RESULTS.md and bench/results.json (``--quick``:
bench/RESULTS-quick.md and bench/results-quick.json, fewer cells and 10 users). With
``--only`` the parts run replace theirs in the JSON file and the others stay as they were.

Loopback only; every run is bounded in time and cleans up the processes it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import loadavg, machine, tree_state
from bench.notes import missed_notes
from bench.report import history_entry, render

HERE = Path(__file__).resolve().parent
PARTS = ("footprint", "latency", "matrix", "cost", "parallel", "soak", "failover", "scale")


def log(*a: Any) -> None:
    print(*a, flush=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.cost import run_cost
    from bench.failover import run_failover
    from bench.footprint import run_footprint
    from bench.latency import run_latency
    from bench.matrix import run_matrix
    from bench.parallel import run_parallel
    from bench.scale import run_scale
    from bench.soak import run_soak

    only = set(args.only.split(",")) if args.only else set(PARTS)
    res: dict[str, Any] = {"quick": args.quick}
    if "footprint" in only:  # first: on a quiet machine
        log("5. one account's footprint: the whole tree's memory, REST requests ...")
        load = loadavg()
        res["footprint"] = await run_footprint(log)
        res["footprint"]["loadavg_before"] = load
    if "latency" in only:
        log("2. time per round trip ...")
        load = loadavg()
        res["latency"] = await run_latency(args.quick, log)
        res["latency"]["loadavg_before"] = load
    if "matrix" in only:
        log("1. planner accuracy matrix ...")
        load = loadavg()
        res["matrix"] = await run_matrix(args.quick, log)
        res["matrix"]["loadavg_before"] = load
    if "cost" in only:
        log("4. USDT per point: fixed tokens, auto, the seeds' planner ...")
        load = loadavg()
        res["cost"] = await run_cost(args.quick, log)
        res["cost"]["loadavg_before"] = load
    if "parallel" in only:
        log("6. one user's two strategies: one after another, then side by side ...")
        load = loadavg()
        res["parallel"] = await run_parallel(log)
        res["parallel"]["loadavg_before"] = load
    if "soak" in only:
        kills = 20 if args.quick else 150
        log(f"7. kill -9 soak: {kills} kills under faults ...")
        load = loadavg()
        res["soak"] = await run_soak(kills, log=lambda *a: None)
        res["soak"]["loadavg_before"] = load
    if "failover" in only:
        users = 6 if args.quick else 30
        log(f"8. failover: 3 nodes x {users} users on one PostgreSQL, one node killed ...")
        load = loadavg()
        res["failover"] = await run_failover(users, log)
        res["failover"]["loadavg_before"] = load
    if "scale" in only:
        res["scale"] = []
        plan = [(10, 10.0)] if args.quick else [(10, 20.0), (100, 20.0), (300, 25.0), (1000, 30.0)]
        for n, window in plan:
            log(f"3. scale: {n} users ...")
            load = loadavg()
            try:
                res["scale"].append(await run_scale(n, window, log))
                res["scale"][-1]["loadavg_before"] = load
            except Exception as exc:  # recorded, and the next size still runs
                log(f"  {n} users failed: {type(exc).__name__}: {exc}")
                res["scale"].append({"users": n, "window": window, "error": f"{exc}"[:300]})
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer cells, 10 users (< 2 min)")
    ap.add_argument("--only", default="", help="comma list of: " + ", ".join(PARTS))
    ap.add_argument("--out", default=str(HERE), help="directory for RESULTS.md / results.json")
    ap.add_argument(
        "--render",
        action="store_true",
        help="only write RESULTS.md again from results.json and history.jsonl (after a "
        "change to the report's words; the figures are the measured ones)",
    )
    args = ap.parse_args(argv)
    if args.render:
        return render_again(Path(args.out), "-quick" if args.quick else "")
    from config.logsetup import configure_logging

    configure_logging("WARNING", "console", stream=sys.stderr)  # the bench's own clients
    t0 = time.monotonic()
    mc = machine()
    tree0 = tree_state()
    res = asyncio.run(run(args))
    res["machine"] = mc
    res["tree"] = {"start": tree0, "end": tree_state()}
    res["command"] = "python -m bench" + (
        " " + shlex.join(sys.argv[1:] if argv is None else argv)
        if (sys.argv[1:] if argv is None else argv)
        else ""
    )
    res["seconds"] = seconds = round(time.monotonic() - t0, 1)
    suffix = "-quick" if args.quick else ""
    out = Path(args.out)
    if args.only:
        res = merge_parts(out / f"results{suffix}.json", res)
    (out / f"results{suffix}.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    hist: list[dict[str, Any]] = []
    hpath = out / "history.jsonl"
    if not args.quick and not args.only:  # full runs only: one line each
        with hpath.open("a") as fh:
            fh.write(json.dumps(history_entry(res), default=str) + "\n")
    if not args.quick and hpath.exists():  # an --only run keeps the full runs' table
        hist = [json.loads(line) for line in hpath.read_text().splitlines() if line.strip()]
    (out / f"RESULTS{suffix}.md").write_text(render(res, missed_notes(res), hist))
    log(f"done in {seconds} s: {out / f'RESULTS{suffix}.md'}")
    return 0


def merge_parts(path: Path, run: dict[str, Any]) -> dict[str, Any]:
    """The parts of an ``--only`` run in place of theirs in the last results (the others'
    figures, machine and command stay); each part run alone listed with its own run."""
    if not path.exists():
        return run
    res = json.loads(path.read_text())
    alone = res.setdefault("parts_run_alone", {})
    for part in PARTS:
        if part in run:
            res[part] = run[part]
            alone[part] = {
                "date_utc": run["machine"]["date_utc"],
                "command": run["command"],
                "tree": run["tree"],
                "seconds": run["seconds"],
            }
    return res


def render_again(out: Path, suffix: str) -> int:
    res = json.loads((out / f"results{suffix}.json").read_text())
    hpath = out / "history.jsonl"
    hist = (
        [json.loads(line) for line in hpath.read_text().splitlines() if line.strip()]
        if not suffix and hpath.exists()
        else []
    )
    (out / f"RESULTS{suffix}.md").write_text(render(res, missed_notes(res), hist))
    log(f"rendered {out / f'RESULTS{suffix}.md'} from results{suffix}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
