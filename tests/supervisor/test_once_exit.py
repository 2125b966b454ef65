"""Issue 20 items 11 and 12: what `run --once` answers when the operator stops a user, and
when a user has no stored session. The real supervisor and real user processes on the
simulated exchange (stand-ins where a fault must be injected).

* `alphavol stop --user 1` of the only user: a stop the operator asked for is not a
  failure, exit 0 (as for SIGTERM and `shutdown`), nothing left open or unsold;
* a user stopped on request that ends with tokens left over still exits 1;
* a user without a stored session: exit 2, naming the command that stores one."""

from __future__ import annotations

from protocol.exitcodes import SupervisorExit
from tests.supervisor.harness import strategy
from tests.supervisor.test_real_users import FAST, acct, token_value


async def test_stopping_the_only_user_under_once_exits_0(deploy, sim):
    d = deploy()
    d.store({"1": sim.credentials(acct("1"))})
    d.write_config([strategy("koge", ["1"], target=100000, amount=10)])
    d.start(child=None, ALPHAVOL_TUNING=FAST)
    await d.wait_ready()
    await d.trading("1", within=30)
    res = await d.acli("stop", "--user", "1")
    assert res.returncode == 0, res.stderr
    assert await d.wait_exit(60) == SupervisorExit.OK == 0, d.diagnose()
    assert "user 1 koge: STOPPED" in d.stdout, d.stdout
    account = await sim.admin.account(acct("1"))
    assert not [o for o in account["orders"] if o["status"] in ("NEW", "PARTIALLY_FILLED")]
    assert token_value(account) < 1  # the drain sold what it bought


async def test_a_stopped_user_with_tokens_left_over_still_exits_1(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(acct(u)) for u in "12"})
    d.write_config([strategy("s1", ["1", "2"], target=100000, amount=10)])
    d.start(ALPHAVOL_STANDIN='{"trade_seconds": 0.02, "leftover_users": ["2"]}')
    await d.wait_ready()
    await d.trading("12")
    for u in "12":
        res = await d.acli("stop", "--user", u)
        assert res.returncode == 0, res.stderr
    assert await d.wait_exit(30) == SupervisorExit.USERS_FAILED == 1, d.diagnose()
    assert "user 1 s1: STOPPED" in d.stdout and "user 2 s1: STOPPED" in d.stdout, d.stdout
    (left,) = d.events("user_leftovers")
    assert left["user_id"] == "2"


async def test_a_user_without_a_session_is_told_the_command_that_stores_one(deploy, sim):
    d = deploy()
    d.store({"1": sim.credentials(acct("1"))})
    d.write_config([strategy("s1", ["1", "u-7"], target=100, amount=10)])
    res = await d.acli("run", "--once")
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "user u-7 has no stored session" in lines[0], lines
    assert "alphavol users add u-7 --curl FILE" in lines[0], lines
    assert "user 1" not in lines[0]
