"""Benchmark 3: many users in one ``alphavol run`` (the real supervisor, forked user
processes) against one sim process, with a 2-second trade interval.

Measured: time from launching ``alphavol run`` until every user has placed its first
order (from the sim's own order stamps), PSS of every user process and of the supervisor
(``/proc/PID/smaps_rollup``), the supervisor's CPU (``/proc/PID/stat``) over the
measurement window, and the latency of ``status`` requests (``ControlClient``) while all
users trade. Each run stops after a fixed window (``alphavol shutdown``, then SIGTERM,
then SIGKILL of anything left, by pid) and checks that no process is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.common import ALPHAVOL, SimProcess, child_env, percentile
from config.credentials import CredentialStore, new_key
from exchange.sim.testing import SimAdmin, SimHarness
from protocol import messages as m
from supervisor.client import ControlClient, SupervisorNotRunning

CLK_TCK = os.sysconf("SC_CLK_TCK")


def rollup(pid: int) -> dict[str, int]:
    """``/proc/PID/smaps_rollup`` in KiB (Rss, Pss, Pss_Anon, Private_Dirty ...)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":"):
                out[parts[0][:-1]] = int(parts[1])
    return out


def pss_kib(pid: int) -> int | None:
    return rollup(pid).get("Pss")


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        return raw.strip()[:160]
    return ""


def cpu_seconds(pid: int) -> float | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def run_queue_wait(pid: int) -> float | None:
    """Seconds the process has waited on a run queue (``/proc/PID/schedstat``, 2nd field):
    time it was ready to run but did not get a CPU."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return sum(f) - idle, sum(f)


class StateSampler:
    """Samples the supervisor's main thread every ``every`` seconds from a thread: its
    scheduler state (R = running or waiting for a CPU) and, when asleep, the kernel
    function it sleeps in (``/proc/PID/wchan``: ``do_epoll_wait`` = its event loop is
    idle; a read/poll on a pipe or socket = blocked in a synchronous call)."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.pid, self.every = pid, every
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                st = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                key = "R (running or runnable)"
                if st != "R":
                    wchan = Path(f"/proc/{self.pid}/wchan").read_text().strip() or "?"
                    key = f"{st} {wchan}"
            except OSError:
                return
            self.counts[key] = self.counts.get(key, 0) + 1
            self._stop.wait(self.every)

    def start(self) -> StateSampler:
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(2)
        n = sum(self.counts.values()) or 1
        return {
            k: round(v / n * 100, 1) for k, v in sorted(self.counts.items(), key=lambda kv: -kv[1])
        }


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(x) for x in (task / "children").read_text().split()]
    return out


def descendants(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        for c in children_of(p):
            if c not in seen:
                seen.append(c)
                todo.append(c)
    return seen


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Deployment:
    """A config + credentials store for ``n`` sim users in a short temp directory."""

    def __init__(self, n: int, sim: SimProcess, interval: float) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="avb-", dir="/tmp"))
        self.key = new_key()
        self.users = [f"s{i:03d}" for i in range(1, n + 1)]
        data, self.runtime = self.dir / "data", self.dir / "run"
        data.mkdir()
        store = CredentialStore(data / "credentials.sqlite", key=self.key)
        harness = SimHarness()
        for u in self.users:
            store.put(u, harness.credentials(u))
        doc = {
            "global_settings": {"max_concurrent_users": n},
            "exchange": {
                "base_url": sim.base_url,
                "ws_url": sim.ws_url,
                "request_timeout_seconds": 10,
            },
            "paths": {"data_dir": str(data), "runtime_dir": str(self.runtime)},
            "schedule": {"daily_restart": False, "offset_seconds": 300},
            "logging": {"level": "INFO", "format": "json"},
            "strategies": [
                {
                    "strategy_id": "scale",
                    "strategy_name": "scale",
                    "target_token": "KOGE",
                    "target_volume": 100_000_000,
                    "single_trade_amount_usdt": 30,
                    "trade_interval_seconds": interval,
                    "volume_check_delay_seconds": 1,
                    "max_daily_cost_usdt": None,
                    "stop_grace_seconds": 5,
                    "user_ids": self.users,
                }
            ],
        }
        self.config = self.dir / "config.yaml"
        self.config.write_text(yaml.safe_dump(doc))
        self.env = child_env(
            ALPHAVOL_SECRET_KEY=self.key.decode(), ALPHAVOL_STOP_MARGIN="3", ALPHAVOL_KILL_AFTER="8"
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [ALPHAVOL, "run", "--once", "--config", str(self.config)],
            stdout=open(self.dir / "stdout", "wb"),
            stderr=open(self.dir / "stderr", "wb"),
            cwd=self.dir,
            env=self.env,
        )

    def status(self, timeout: float = 5.0) -> m.StatusReply:
        reply = ControlClient(self.runtime).request(m.StatusRequest(), timeout)
        assert isinstance(reply, m.StatusReply), reply
        return reply

    def users_status(self) -> list[m.UserStatus]:
        return [u for s in self.status().strategies for u in s.users]

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _status_sampler(
    dep: Deployment, seconds: float, gap: float, out: list[float], failed: list[str]
) -> None:
    """Sequential status requests from a thread, as a CLI would send them. A request that
    gets no answer within 5 s counts as a 5 s sample (and is listed in ``failed``)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        try:
            dep.status(timeout=5.0)
        except Exception as exc:
            failed.append(f"{type(exc).__name__}: {exc}"[:200])
        out.append((time.perf_counter() - t) * 1000)
        time.sleep(gap)


def ppids() -> dict[int, int]:
    """pid -> parent pid of every process (from /proc/*/stat)."""
    out: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            raw = (d / "stat").read_text()
            out[int(d.name)] = int(raw[raw.rindex(")") + 2 :].split()[1])
    return out


def user_pids(sup_pid: int) -> list[int]:
    """User processes: the children of the supervisor's fork server."""
    parents = ppids()
    servers = {p for p, pp in parents.items() if pp == sup_pid and "fork" in cmdline(p)}
    return [p for p, pp in parents.items() if pp in servers and alive(p)]


def log_summary(path: Path, launched: float | None = None) -> dict[str, Any]:
    """What the supervisor logged (JSON lines): exits by code, warnings/errors by event."""
    exits: dict[str, int] = {}
    events: dict[str, int] = {}
    samples: list[str] = []
    starts: list[str] = []
    lost_at: list[str] = []
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            ev = str(rec.get("event"))
            if ev == "user_process_started":
                starts.append(str(rec.get("timestamp", "")))
            if ev == "user_process_exited":
                k = str(rec.get("exitcode"))
                exits[k] = exits.get(k, 0) + 1
                if k == "16":
                    lost_at.append(str(rec.get("timestamp", "")))
            if rec.get("level") in ("warning", "error", "critical"):
                events[ev] = events.get(ev, 0) + 1
                if len(samples) < 5:
                    samples.append(line[:300])
    span = None
    lost_rel: list[float] = []
    with contextlib.suppress(ValueError, IndexError):
        ts = [dt.datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp() for x in starts]
        span = round(ts[-1] - ts[0], 3) if ts else None
        lost = [dt.datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp() for x in lost_at]
        lost_rel = sorted(round(t - launched, 1) for t in lost) if launched else []
    return {
        "supervisor_lost_exit_seconds_after_launch": {
            "first": lost_rel[0] if lost_rel else None,
            "median": percentile(lost_rel, 50),
            "last": lost_rel[-1] if lost_rel else None,
        },
        "process_starts": len(starts),
        "process_starts_span_seconds": span,
        "exits_by_code": exits,
        "warnings_by_event": events,
        "samples": samples,
    }


def try_users_status(dep: Deployment) -> list[m.UserStatus] | None:
    try:
        return dep.users_status()
    except (SupervisorNotRunning, AssertionError, TimeoutError):
        return None


async def run_scale(n: int, window: float, log=print, interval: float = 2.0) -> dict[str, Any]:
    sim = await SimProcess(
        seed=1, fill_delay=0, volume_lag=0, volatility=0, starting_usdt="1000000"
    ).start()
    dep = Deployment(n, sim, interval)
    res: dict[str, Any] = {"users": n, "trade_interval_seconds": interval, "window": window}
    stray: list[int] = []
    t_launch_ms = time.time() * 1000
    try:
        t_launch_ms = time.time() * 1000
        t0 = time.monotonic()
        dep.start()
        assert dep.proc is not None
        sup_pid = dep.proc.pid
        startup_states = StateSampler(sup_pid).start()
        # until every user has traded once (then the first orders are all in the sim)
        deadline = t0 + 30 + n * 0.2
        running: list[m.UserStatus] = []
        while time.monotonic() < deadline:
            if dep.proc.poll() is not None:
                raise RuntimeError(f"supervisor exited {dep.proc.returncode}: {_tail(dep)}")
            got = await asyncio.to_thread(try_users_status, dep)
            if got is not None:
                running = got
                if len(running) == n and all(u.trades >= 1 for u in running):
                    break
            await asyncio.sleep(0.25)
        res["all_traded_seconds"] = round(time.monotonic() - t0, 2)
        res["supervisor_states_startup_percent"] = startup_states.stop()
        states: dict[str, int] = {}
        for u in running:
            states[u.state] = states.get(u.state, 0) + 1
        res["states_after_start"] = states
        async with aiohttp.ClientSession() as http:
            admin = SimAdmin(sim.base_url, http)
            firsts: list[int] = []
            for u in dep.users:
                view = await admin.account(u)
                made = [o["created_ms"] for o in view["orders"]]
                if made:
                    firsts.append(min(made))
            res["users_with_first_order"] = len(firsts)
            res["first_order_all_users_seconds"] = (
                round((max(firsts) - t_launch_ms) / 1000, 3) if len(firsts) == n else None
            )
            res["first_order_median_seconds"] = (
                round((percentile(firsts, 50) - t_launch_ms) / 1000, 3) if firsts else None
            )
            # measurement window: everyone trading
            window_states = StateSampler(sup_pid).start()
            cpu0, w0 = cpu_seconds(sup_pid), time.monotonic()
            wait0, busy0 = run_queue_wait(sup_pid), machine_busy()
            sample0 = {p: run_queue_wait(p) for p in user_pids(sup_pid)}
            ucpu0 = {p: cpu_seconds(p) for p in sample0}
            simcpu0 = cpu_seconds(sim.pid) if sim.pid else None
            lat: list[float] = []
            failed: list[str] = []
            sampler = threading.Thread(
                target=_status_sampler, args=(dep, window, 0.1, lat, failed), daemon=True
            )
            sampler.start()
            await asyncio.sleep(window / 2)
            kids = descendants(sup_pid)
            pids = set(user_pids(sup_pid))
            rolls = {pid: rollup(pid) for pid in pids}
            user_pss = [r["Pss"] for r in rolls.values() if "Pss" in r]
            other = [k for k in kids if k not in pids]
            other_pss = {k: (pss_kib(k), cmdline(k)) for k in other}
            med_pid = sorted(rolls, key=lambda p: rolls[p].get("Pss", 0))[len(rolls) // 2]
            breakdown = {
                k: _mib(v)
                for k, v in rolls[med_pid].items()
                if k
                in (
                    "Rss",
                    "Pss",
                    "Pss_Anon",
                    "Pss_File",
                    "Shared_Clean",
                    "Shared_Dirty",
                    "Private_Clean",
                    "Private_Dirty",
                )
            }
            sup_pss = pss_kib(sup_pid)
            await asyncio.to_thread(sampler.join, window + 10)
            cpu1, w1 = cpu_seconds(sup_pid), time.monotonic()
            res["supervisor_states_window_percent"] = window_states.stop()
            wait1, busy1 = run_queue_wait(sup_pid), machine_busy()
            user_waits = []
            for p, a in sample0.items():
                b = run_queue_wait(p)
                if a is not None and b is not None:
                    user_waits.append((b - a) / (w1 - w0))
            machine_pct = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * 100
            simcpu1 = cpu_seconds(sim.pid) if sim.pid else None
            ucpu = 0.0
            for p, a in ucpu0.items():
                b = cpu_seconds(p)
                if a is not None and b is not None:
                    ucpu += b - a
            users_now = await asyncio.to_thread(try_users_status, dep) or []
            trades = sum(u.trades for u in users_now)
            sim_otos = 0
            for u in dep.users:
                sim_otos += (await admin.account(u))["oto_count"]
            res.update(
                {
                    "user_processes_running": len(pids),
                    "user_pss_mib": {
                        "median": _mib(percentile(user_pss, 50)),
                        "max": _mib(max(user_pss) if user_pss else None),
                        "mean": _mib(sum(user_pss) / len(user_pss) if user_pss else None),
                        "n": len(user_pss),
                    },
                    "supervisor_pss_mib": _mib(sup_pss),
                    "user_median_rollup_mib": breakdown,
                    "other_children_pss_mib": {
                        str(k): {"pss": _mib(v), "cmd": c} for k, (v, c) in other_pss.items()
                    },
                    "supervisor_cpu_percent_window": (
                        round((cpu1 - cpu0) / (w1 - w0) * 100, 1)
                        if cpu0 is not None and cpu1 is not None
                        else None
                    ),
                    "supervisor_cpu_seconds_total": cpu1,
                    "machine_cpu_busy_percent_window": round(machine_pct, 1),
                    "user_processes_cpu_percent_window": round(ucpu / (w1 - w0) * 100, 1),
                    "sim_cpu_percent_window": (
                        round((simcpu1 - simcpu0) / (w1 - w0) * 100, 1)
                        if simcpu0 is not None and simcpu1 is not None
                        else None
                    ),
                    "supervisor_run_queue_wait_per_second": (
                        round((wait1 - wait0) / (w1 - w0), 3)
                        if wait0 is not None and wait1 is not None
                        else None
                    ),
                    "user_run_queue_wait_per_second_median": (
                        round(percentile(user_waits, 50), 3) if user_waits else None
                    ),
                    "user_processes_alive_whole_window": len(user_waits),
                    "status_ms": {
                        "n": len(lat),
                        "p50": _r(percentile(lat, 50)),
                        "p99": _r(percentile(lat, 99)),
                        "max": _r(max(lat) if lat else None),
                    },
                    "status_failures": len(failed),
                    "status_failure_sample": failed[:2],
                    "trades_total_at_end": trades,
                    "sim_otos_at_end": sim_otos,
                    "trades_per_second_all_users": round(sim_otos / (time.monotonic() - t0), 1),
                    "states_at_end": _count(u.state for u in users_now),
                }
            )
    finally:
        stray = await _shutdown(dep, res)
        await sim.stop()
        res["supervisor_log"] = log_summary(dep.dir / "stderr", t_launch_ms / 1000)
        res["stray_processes"] = stray
        if not stray:
            dep.cleanup()
    u = res.get("user_pss_mib", {})
    log(
        f"  {n} users: first orders by {res.get('first_order_all_users_seconds')}s, "
        f"PSS user median {u.get('median')} MiB max {u.get('max')} MiB, "
        f"supervisor {res.get('supervisor_pss_mib')} MiB, "
        f"cpu {res.get('supervisor_cpu_percent_window')}%, "
        f"status p50 {res.get('status_ms', {}).get('p50')} p99 "
        f"{res.get('status_ms', {}).get('p99')} ms, stray {stray}"
    )
    return res


async def _shutdown(dep: Deployment, res: dict[str, Any]) -> list[int]:
    """``alphavol shutdown``; SIGTERM after 30 s; SIGKILL by pid after 20 more."""
    if dep.proc is None:
        return []
    sup = dep.proc.pid
    kids = descendants(sup)
    t = time.monotonic()
    if dep.proc.poll() is None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(
                subprocess.run,
                [ALPHAVOL, "shutdown", "--config", str(dep.config)],
                capture_output=True,
                timeout=15,
                env=dep.env,
            )
        try:
            await asyncio.to_thread(dep.proc.wait, 30)
        except subprocess.TimeoutExpired:
            dep.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(dep.proc.wait, 20)
            except subprocess.TimeoutExpired:
                dep.proc.kill()
                dep.proc.wait()
    res["shutdown_seconds"] = round(time.monotonic() - t, 2)
    res["supervisor_exit"] = dep.proc.returncode
    end = time.monotonic() + 10
    left = [k for k in kids if alive(k)]
    while left and time.monotonic() < end:
        await asyncio.sleep(0.1)
        left = [k for k in kids if alive(k)]
    for k in left:  # only our own, by pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(k, signal.SIGKILL)
    return left


def _tail(dep: Deployment) -> str:
    with contextlib.suppress(OSError):
        return (dep.dir / "stderr").read_text(errors="replace")[-2000:]
    return ""


def _mib(kib: float | None) -> float | None:
    return None if kib is None else round(kib / 1024, 2)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _count(xs) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in xs:
        out[x] = out.get(x, 0) + 1
    return out
