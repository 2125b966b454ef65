"""``python -m bench.footprint``: what one account costs to run (issue 15's first goals).

One KOGE user, target 400, 30 USDT trades (the run the original tool was measured on),
through the real ``alphavol run --once`` against a sim process. Every 0.1 s the PSS of
every process of the service's tree (``/proc/PID/smaps_rollup``: the supervisor and all
its descendants: fork server, multiprocessing's resource tracker if any, the user
process) is read; reported: the largest sum over the tree seen at one instant, each
process's largest PSS with its role, and the REST requests the sim counted for the whole
run (the account's and the anonymous ones). Writes bench/footprint.json.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.common import ALPHAVOL, SimProcess, child_env
from bench.scale import children_of, cmdline, descendants, rollup
from config.credentials import CredentialStore, new_key
from exchange.sim.testing import SimAdmin, SimHarness

HERE = Path(__file__).resolve().parent
ACCOUNT = "footprint-1"
BARS = {"tree_mib": 45.0, "requests": 20}


def _roles(sup: int) -> dict[int, str]:
    """The supervisor, its children (the fork server, multiprocessing's resource tracker
    if any) and the user processes (children of the fork server)."""
    roles = {sup: "supervisor"}
    for child in children_of(sup):
        line = cmdline(child)
        if "resource_tracker" in line:
            roles[child] = "resource tracker"
        elif kids := children_of(child):
            roles[child] = "fork server"
            roles.update({k: "user process" for k in kids})
        else:
            roles[child] = "fork server" if "fork" in line else line[:60]
    return roles


def _start(config: Path, workdir: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(workdir / "stdout", "wb") as out, open(workdir / "stderr", "wb") as err:
        return subprocess.Popen(
            [ALPHAVOL, "run", "--once", "--config", str(config)],
            stdout=out,
            stderr=err,
            cwd=workdir,
            env=env,
        )


async def run_footprint(log: Any = print) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="avf-", dir="/tmp"))
    sim = await SimProcess(fill_delay=0.05, volume_lag=1.0).start()
    try:
        key = new_key()
        data = workdir / "data"
        data.mkdir()
        CredentialStore(data / "credentials.sqlite", key=key).put(
            "1", SimHarness().credentials(ACCOUNT)
        )
        doc = {
            "exchange": {"base_url": sim.base_url, "ws_url": sim.ws_url},
            "paths": {"data_dir": str(data), "runtime_dir": str(workdir / "run")},
            "logging": {"level": "INFO", "format": "json"},
            "strategies": [
                {
                    "strategy_id": "koge",
                    "target_token": "KOGE",
                    "target_volume": 400,
                    "single_trade_amount_usdt": 30,
                    "trade_interval_seconds": 1,
                    "volume_check_delay_seconds": 2,
                    "user_ids": ["1"],
                }
            ],
        }
        config = workdir / "config.yaml"
        config.write_text(yaml.safe_dump(doc))
        t0 = time.monotonic()
        proc = _start(config, workdir, child_env(ALPHAVOL_SECRET_KEY=key.decode()))
        peak_total = 0
        peak_at: dict[int, int] = {}
        anon_at: dict[int, int] = {}
        roles: dict[int, str] = {}
        samples = 0
        while proc.poll() is None and time.monotonic() - t0 < 300:
            tree = [proc.pid, *descendants(proc.pid)]
            rolls = {p: rollup(p) for p in tree}
            sizes = {p: r.get("Pss", 0) for p, r in rolls.items()}
            roles.update(_roles(proc.pid))
            for p in tree:
                if sizes[p] >= peak_at.get(p, 0):
                    peak_at[p] = sizes[p]
                    anon_at[p] = rolls[p].get("Pss_Anon", 0)
            total = sum(sizes.values())
            if total > peak_total:
                peak_total = total
            samples += 1
            await asyncio.sleep(0.1)
        seconds = round(time.monotonic() - t0, 1)
        async with aiohttp.ClientSession() as session:
            admin = SimAdmin(sim.base_url, session)
            acc = await admin.account(ACCOUNT)
            state = await admin.state()
        requests = sum(acc["requests"].values()) + sum(state["anonymous_requests"].values())
        per_process = sorted(
            (
                {
                    "role": roles.get(p, cmdline(p)[:60]),
                    "pss_mib": round(k / 1024, 1),
                    "pss_anon_mib": round(anon_at.get(p, 0) / 1024, 1),
                }
                for p, k in peak_at.items()
            ),
            key=lambda r: -r["pss_mib"],
        )
        res = {
            "run": "one KOGE user, target 400, 30 USDT trades, alphavol run --once",
            "exit": proc.returncode,
            "seconds": seconds,
            "samples": samples,
            "round_trips": acc["oto_count"],
            "tree_pss_mib": round(peak_total / 1024, 1),
            "tree_bar_mib": BARS["tree_mib"],
            "tree_met": peak_total / 1024 <= BARS["tree_mib"],
            "per_process": per_process,
            "rest_requests": requests,
            "rest_by_path": {**acc["requests"], **state["anonymous_requests"]},
            "requests_bar": BARS["requests"],
            "requests_met": requests <= BARS["requests"],
        }
        log(
            f"  tree {res['tree_pss_mib']} MiB PSS (bar {BARS['tree_mib']}),"
            f" {requests} REST requests (bar {BARS['requests']}), {acc['oto_count']} round trips"
        )
        for row in per_process:
            log(f"    {row['role']:<18} {row['pss_mib']:>6} MiB ({row['pss_anon_mib']} anon)")
        return res
    finally:
        await sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    res = asyncio.run(run_footprint())
    (HERE / "footprint.json").write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
