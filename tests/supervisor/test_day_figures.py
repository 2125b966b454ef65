"""The day's figures every screen shows (``status --json``, the metrics, the exit
summary) are those of ``alphavol history`` for today, and those are the simulated
exchange's own record: after a supervisor ``kill -9`` and restart, user processes killed
mid-trade, strategies side by side, and a run with no fault at all."""

from __future__ import annotations

import json
import os
import re
import signal
from decimal import Decimal

import pytest

from tests.supervisor.harness import Deployment, strategy, wait_gone
from tests.supervisor.test_metrics import free_port, samples, scrape
from tests.supervisor.test_real_users import FAST, acct

EXACT = Decimal("1e-8")


async def sim_record(sim, user: str) -> tuple[int, Decimal]:
    """(OTOs the exchange accepted today, USDT the account lost) for ``user``."""
    a = await sim.admin.account(acct(user))
    usdt = a["balances"]["USDT"]
    lost = Decimal(sim.sim.starting_usdt) - Decimal(usdt["free"]) - Decimal(usdt["locked"])
    return a["oto_count"], lost


async def history_today(d: Deployment) -> dict[str, dict]:
    """Per user, today's round trips, cost and credited volume as ``history --json``
    gives them (all tokens of the day)."""
    res = await d.acli("history", "--json", "--days", "1")
    assert res.returncode == 0, res.stderr
    out: dict[str, dict] = {}
    for r in json.loads(res.stdout):
        u = out.setdefault(r["user_id"], {"trips": 0, "cost": Decimal(0), "volume": Decimal(0)})
        u["trips"] += r["round_trips"]
        u["cost"] += Decimal(r["cost_usdt"])
        if r["credited_volume"] is not None:  # None: no reading of the day recorded yet
            u["volume"] += Decimal(r["credited_volume"])
    return out


async def status_today(d: Deployment) -> dict[str, dict]:
    """Per user, what ``status --json`` shows: its strategies' round trips and cost
    summed, and the user's own figures of the day."""
    res = await d.acli("status", "--json")
    assert res.returncode == 0, res.stderr
    out: dict[str, dict] = {}
    for st in json.loads(res.stdout)["strategies"]:
        for row in st["users"]:
            u = out.setdefault(row["user_id"], {"trips": 0, "cost": Decimal(0), "rows": []})
            u["trips"] += row["trades"]
            u["cost"] += Decimal(row["cost_today"])
            u["rows"].append(row)
    return out


async def status_matches_history(d: Deployment, users: list[str], within: float = 20) -> dict:
    """Wait until ``status`` shows ``history``'s figures of today for every user (the
    supervisor reads the books shortly after each trade); returns both."""
    seen: dict = {}

    async def same():
        hist, stat = await history_today(d), await status_today(d)
        seen.update(history=hist, status=stat)
        for u in users:
            h, s = hist.get(u), stat.get(u)
            if h is None or s is None or (s["trips"], s["cost"]) != (h["trips"], h["cost"]):
                return None
            for row in s["rows"]:
                if (row.get("user_round_trips"), row.get("user_cost_today")) != (
                    h["trips"],
                    str(h["cost"]),
                ):
                    return None
        return seen

    try:
        return await d.until(same, within, "status showing history's figures of today")
    except AssertionError:
        raise AssertionError(
            f"status {seen.get('status')}\nhistory {seen.get('history')}"
        ) from None


async def assert_the_exchanges_record(sim, users: list[str], hist: dict) -> None:
    for u in users:
        otos, lost = await sim_record(sim, u)
        assert hist[u]["trips"] == otos > 0, (u, hist[u], otos)
        assert abs(hist[u]["cost"] - lost) <= EXACT, (u, hist[u], lost)


async def test_after_a_supervisor_kill_and_restart_status_and_metrics_show_the_whole_day(
    deploy, sim
):
    await sim.admin.set_config(fill_delay=0.05)
    port = free_port()
    d: Deployment = deploy()
    d.store({"1": sim.credentials(acct("1"))})
    metrics = {"metrics": {"listen": f"127.0.0.1:{port}"}}
    d.write_config([strategy("koge", ["1"], target=500, amount=10)], sections=metrics)
    d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    users = await d.wait_users(
        lambda us: us[("koge", "1")].trades >= 8 and us[("koge", "1")].pid, 30, "8 round trips"
    )
    d.signal(signal.SIGKILL)
    await d.wait_exit(5)
    assert await wait_gone([users[("koge", "1")].pid], 10) == []
    before, _ = await sim_record(sim, "1")

    d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    await d.wait_users(lambda us: us[("koge", "1")].state == "DONE", 60, "user 1 DONE")
    seen = await status_matches_history(d, ["1"])
    hist = seen["history"]
    await assert_the_exchanges_record(sim, ["1"], hist)
    assert hist["1"]["trips"] > before  # both supervisors' round trips, not the second's
    (row,) = seen["status"]["1"]["rows"]
    points = row["points_today"]
    assert points == int(hist["1"]["volume"]).bit_length() - 1  # floor(log2(volume))
    assert Decimal(row["cost_per_point"]) == (hist["1"]["cost"] / points).quantize(EXACT)

    fam = await scrape(port)
    key = ("1", "koge")
    assert (
        samples(fam, "alphavol_round_trips_today", "user_id", "strategy_id")[key]
        == (hist["1"]["trips"])
    )
    cost = samples(fam, "alphavol_cost_usdt_today", "user_id", "strategy_id")[key]
    assert cost == float(hist["1"]["cost"])
    assert samples(fam, "alphavol_points_today", "user_id")[("1",)] == points


async def test_user_processes_killed_mid_trade_leave_the_figures_true(deploy, sim):
    await sim.admin.set_config(fill_delay=0.1)
    d: Deployment = deploy()
    d.store({"1": sim.credentials(acct("1"))})
    d.write_config([strategy("koge", ["1"], target=400, amount=10)])
    d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    killed: list[int] = []
    for _ in range(3):
        users = await d.wait_users(
            lambda us: (
                (u := us[("koge", "1")]).pid and u.pid not in killed and u.phase == "trading"
            ),
            30,
            "a new user process trading",
        )
        victim = users[("koge", "1")].pid
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
        assert await wait_gone([victim], 10) == []
    await d.wait_users(lambda us: us[("koge", "1")].state == "DONE", 90, "user 1 DONE")
    seen = await status_matches_history(d, ["1"])
    await assert_the_exchanges_record(sim, ["1"], seen["history"])
    d.signal(signal.SIGTERM)
    assert await d.wait_exit(30) == 0, d.diagnose()
    h = seen["history"]["1"]
    assert f"user 1 today: {h['trips']} round trips, cost {h['cost']:.4f} USDT" in d.stdout


async def test_strategies_side_by_side_with_a_kill_add_up_to_the_exchanges_day(deploy, sim):
    await sim.admin.set_config(fill_delay=0.05)
    d: Deployment = deploy()
    d.store({"1": sim.credentials(acct("1"))})
    d.write_config(
        [
            strategy("koge", ["1"], target=200, amount=10),
            strategy("aop", ["1"], target=800, amount=10, token="AOP"),
        ],
        parallel_strategies=True,
    )
    d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    users = await d.wait_users(
        lambda us: all(us[(s, "1")].trades >= 3 for s in ("koge", "aop")) and us[("koge", "1")].pid,
        30,
        "both strategies trading",
    )
    os.kill(users[("koge", "1")].pid, signal.SIGKILL)
    await d.wait_users(
        lambda us: all(u.state == "DONE" for u in us.values()), 90, "both strategies DONE"
    )
    seen = await status_matches_history(d, ["1"])
    await assert_the_exchanges_record(sim, ["1"], seen["history"])
    rows = {r["strategy_id"]: r for r in seen["status"]["1"]["rows"]}
    assert all(r["trades"] > 0 for r in rows.values())
    d.signal(signal.SIGTERM)
    assert await d.wait_exit(30) == 0, d.diagnose()
    h = seen["history"]["1"]
    assert f"user 1 today: {h['trips']} round trips, cost {h['cost']:.4f} USDT" in d.stdout
    shares = re.findall(r"user 1 (?:koge|aop): DONE .* trades (\d+) cost ([\d.]+) USDT", d.stdout)
    assert sum(int(n) for n, _ in shares) == h["trips"], d.stdout


async def test_a_run_without_faults_counts_the_dust_sweeps(deploy, sim):
    """Each round trip leaves a little KOGE unsold (the buy fee is taken in it); at the end
    the strategy sells what adds up (a sweep), which gives some of the cost back."""
    d: Deployment = deploy()
    d.store({u: sim.credentials(acct(u)) for u in ("1", "2")})
    d.write_config(
        [
            strategy("koge", ["1"], target=3000, amount=50),
            strategy("aop", ["2"], target=300, amount=15, token="AOP"),
        ]
    )
    d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    await d.wait_users(lambda us: all(u.state == "DONE" for u in us.values()), 60, "all DONE")
    seen = await status_matches_history(d, ["1", "2"])
    await assert_the_exchanges_record(sim, ["1", "2"], seen["history"])
    assert d.events("dust_sweeping") or "dust_sweeping" in d.stderr


async def test_progress_moves_within_a_batch_and_a_lowered_target_passed_shows_as_passed(
    deploy, sim
):
    """The exchange's figure is read between batches: meanwhile status shows it as read
    (``total_volume``, with its age) and, apart, what the batch traded since
    (``unconfirmed_volume``); progress counts both."""
    await sim.admin.set_config(fill_delay=0.05)
    d: Deployment = deploy()
    d.store({"1": sim.credentials(acct("1"))})
    slow_reads = {"volume_check_delay_seconds": 5}
    d.write_config([strategy("koge", ["1"], target=100000, amount=10, **slow_reads)])
    d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()

    async def moving():
        doc = json.loads((await d.acli("status", "--json")).stdout)
        (user,) = doc["strategies"][0]["users"]
        return doc if Decimal(user.get("unconfirmed_volume") or 0) >= 20 else None

    doc = await d.until(moving, 30, "20 USDT traded since the last read")
    st = doc["strategies"][0]
    (user,) = st["users"]
    read, since = Decimal(user["current_volume"]), Decimal(user["unconfirmed_volume"])
    assert Decimal(st["total_volume"]) == read and Decimal(st["unconfirmed_volume"]) == since
    assert st["progress"] == pytest.approx(float((read + since) / 1000))
    assert st["progress"] > float(read / 1000) * 1.0001
    assert user["volume_age_seconds"] >= 0
    exchange = Decimal((await sim.admin.account(acct("1")))["volume_today"]["KOGE"])
    assert read <= exchange  # the exchange's figure as it was read, never the estimate
    text = (await d.acli("status")).stdout
    (row,) = [x for x in text.splitlines() if x.split()[:2] == ["1", "RUNNING"]]
    assert "+" in row, text

    lowered = int(read) + 1  # above what was read, below what was traded since
    d.write_config([strategy("koge", ["1"], target=lowered, amount=10, **slow_reads)])
    d.signal(signal.SIGHUP)

    async def reloaded():
        doc = json.loads((await d.acli("status", "--json")).stdout)
        return doc if doc["strategies"][0]["target_volume"] == str(lowered) else None

    doc = await d.until(reloaded, 20, "the lowered target in status")
    assert doc["strategies"][0]["progress"] == 100.0, doc
    d.signal(signal.SIGTERM)
    assert await d.wait_exit(30) == 0, d.diagnose()
