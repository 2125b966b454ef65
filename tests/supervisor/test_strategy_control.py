"""Issue 12 (status that is true, stop one strategy) and issue 16 (run --strategy), with
the real supervisor and real user processes on the simulated exchange.

* A strategy waiting its turn in its user's process says QUEUED (no pid); stopping it
  takes it out of the process's list, stopping a running one drains only it: the user's
  other strategy goes on in the same process.
* After Ctrl+C mid-run, the printed summary's volume is the exchange's (within one trade),
  not the starting one, and says how old the read is.
* `run --once --strategy aop` trades only AOP; KOGE is shown as not selected; an unknown id
  is exit 2 naming the known ones."""

from __future__ import annotations

import json
import re
import signal
from decimal import Decimal

from tests.supervisor.harness import strategy
from tests.supervisor.test_real_users import FAST, acct


def tokens_ordered(account: dict) -> set[str]:
    return {o["token"] for o in account["orders"]}


async def test_stopping_a_strategy_stops_only_that_strategy(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(acct(u)) for u in ("1", "3")})
    koge = strategy("koge", ["1", "3"], target=300, amount=10, trade_interval_seconds=0.15)
    aop = strategy("aop", ["1", "3"], target=160, amount=10, token="AOP")
    d.write_config([koge, aop])
    d.start(child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    users = await d.wait_users(
        lambda us: all(us[("koge", u)].trades >= 1 for u in "13") and us[("aop", "1")].pid is None,
        30,
        "koge trading for users 1 and 3",
    )
    queued = users[("aop", "1")]
    assert (queued.state, queued.phase, queued.pid) == ("QUEUED", "queued", None), queued
    pid1 = users[("koge", "1")].pid
    assert users[("koge", "1")].state == "RUNNING" and pid1

    res = await d.acli("stop", "aop", "--user", "3")  # waiting its turn: never begins
    assert res.returncode == 0, res.stderr
    res = await d.acli("stop", "koge", "--user", "1")  # running: drains, aop follows
    assert res.returncode == 0, res.stderr
    users = await d.wait_users(
        lambda us: us[("koge", "1")].state == "STOPPED" and us[("aop", "1")].trades >= 1,
        30,
        "user 1 on to aop after koge was stopped",
    )
    assert users[("aop", "3")].state == "STOPPED" and users[("aop", "3")].pid is None
    assert await d.wait_exit(60) == 0, d.diagnose()  # stops asked for are not failures
    starts = [e["pid"] for e in d.events("user_process_started") if e["user_id"] == "1"]
    assert starts == [pid1]  # the same process went on from koge to aop
    out = d.stdout
    for line in ("user 1 koge: STOPPED", "user 1 aop: DONE", "user 3 koge: DONE"):
        assert line in out, out
    assert "user 3 aop: STOPPED" in out, out
    a3 = await sim.admin.account(acct("3"))
    assert tokens_ordered(a3) == {"KOGE"}, a3["orders"]
    assert Decimal(a3["volume_now"]["KOGE"]) >= 300
    assert "AOP" in tokens_ordered(await sim.admin.account(acct("1")))


async def test_the_summary_after_ctrl_c_shows_the_volume_last_read(deploy, sim):
    d = deploy()
    d.store({"1": sim.credentials(acct("1"))})
    d.write_config([strategy("koge", ["1"], target=100000, amount=10, trade_interval_seconds=0.05)])
    d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    await d.wait_users(lambda us: us[("koge", "1")].trades >= 5, 40, "five trades")
    doc = json.loads((await d.acli("status", "--json")).stdout)
    row = doc["strategies"][0]["users"][0]
    assert row["volume_at"] and row["volume_age_seconds"] >= 0 and "eta_seconds" in row
    d.signal(signal.SIGINT)
    assert await d.wait_exit(30) == 0, d.diagnose()
    line = next(x for x in d.stdout.splitlines() if "user 1 koge:" in x)
    m = re.search(r"volume ([\d.]+)/100000 \(read (\d+)s ago\)", line)
    assert m, line
    shown = Decimal(m.group(1))
    exchange = Decimal((await sim.admin.account(acct("1")))["volume_today"]["KOGE"])
    assert shown >= 50 and abs(exchange - shown) <= 10, (shown, exchange)


async def test_run_with_strategy_trades_only_the_strategies_named(deploy, sim):
    d = deploy()
    d.store({"1": sim.credentials(acct("1"))})
    koge = strategy("koge", ["1"], target=300, amount=10)
    aop = strategy("aop", ["1"], target=600, amount=10, token="AOP", trade_interval_seconds=0.1)
    d.write_config([koge, aop])
    res = await d.acli("run", "--once", "--strategy", "aopp")
    assert res.returncode == 2
    assert "did you mean 'aop'?" in res.stderr and "known: koge, aop" in res.stderr, res.stderr

    d.start(child=None, args=("--strategy", "aop"), ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    reply = await d.status()
    by_id = {s.strategy_id: s for s in reply.strategies}
    assert by_id["koge"].selected is False and by_id["koge"].users == []
    assert by_id["aop"].selected and [u.user_id for u in by_id["aop"].users] == ["1"]
    text = (await d.acli("status")).stdout
    assert "koge (KOGE) KOGE: not selected (run --strategy), not traded" in text, text
    assert await d.wait_exit(60) == 0, d.diagnose()
    a1 = await sim.admin.account(acct("1"))
    assert tokens_ordered(a1) == {"AOP"}, a1["orders"]
    assert Decimal(a1["volume_now"]["AOP"]) >= 600
