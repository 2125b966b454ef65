"""Issue 20, item 5: `run` checks every strategy's token and chain before it trades, with
one token-list request, saying what `check --online` says (same line, same did-you-mean):
exit 2, nothing started. If the exchange does not answer then, `run` starts anyway and
checks when it does: a pair found wrong goes FATAL with that line, the others trade on.
Item 4 (reload revives what it fixes): correcting that line and reloading starts it again."""

from __future__ import annotations

import signal

from protocol.addresses import CONTROL_SOCKET
from tests.supervisor.harness import strategy

TOKEN_LIST = "/token/list"


async def test_run_refuses_an_unknown_token_and_a_wrong_chain_like_check_online(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in ("1", "2", "3")})
    d.write_config(
        [
            strategy("typo", ["1"], target=1000, token="KOGEE"),
            strategy("chain", ["2"], target=1000, token="KOGE", target_chain="Solana"),
            strategy("fine", ["3"], target=1000, token="KOGE"),
        ]
    )
    online = await d.acli("check", "--online")
    assert online.returncode == 2, online.stderr
    expected = [ln for ln in online.stderr.splitlines() if ": strategies[" in ln]
    assert len(expected) == 2, online.stderr
    assert "did you mean 'KOGE'?" in expected[0] and "KOGE is listed on BSC" in expected[1]

    res = await d.acli("run", "--once", within=30)
    assert res.returncode == 2, res.stdout + res.stderr
    said = res.stderr.splitlines()
    assert [ln for ln in said if ln in expected] == expected, res.stderr
    assert "nothing was started" in res.stderr
    for u in ("1", "2", "3"):
        assert (await sim.admin.account(f"acct{u}"))["oto_count"] == 0
    assert not (d.runtime / CONTROL_SOCKET).exists()


async def test_an_exchange_silent_at_start_is_asked_again_and_a_wrong_chain_is_fatal(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in ("1", "2")})
    d.write_config(
        [
            strategy("chain", ["1"], target=10**6, token="KOGE", target_chain="Solana"),
            strategy("fine", ["2"], target=10**6, token="KOGE"),
        ]
    )
    await sim.admin.set_faults(error_rate=1.0, paths=[TOKEN_LIST])  # the list is down
    d.start(once=False, ALPHAVOL_STANDIN='{"trade_seconds": 0.02}')
    await d.wait_ready()
    await d.wait_users(
        lambda us: all(u.state == "RUNNING" for u in us.values()), 20, "both started anyway"
    )
    assert "the exchange did not give its token list" in d.stderr
    await sim.admin.set_faults(error_rate=0.0, paths=[])  # it answers again
    users = await d.wait_users(
        lambda us: us[("chain", "1")].state == "FATAL", 30, "the wrong chain FATAL"
    )
    bad = users[("chain", "1")]
    assert "strategies[0].target_chain: KOGE is listed on BSC, not on Solana" in (
        bad.last_error or ""
    )
    assert f"{d.config_path}:" in (bad.last_error or "")
    assert users[("fine", "2")].state == "RUNNING"
    st = await d.acli("status")
    assert "KOGE is listed on BSC, not on Solana" in st.stdout, st.stdout

    # the line fixed, a reload: the strategy starts again (issue 20, item 4)
    d.write_config(
        [
            strategy("chain", ["1"], target=10**6, token="KOGE"),
            strategy("fine", ["2"], target=10**6, token="KOGE"),
        ]
    )
    res = await d.acli("reload")
    assert res.returncode == 0, res.stderr
    await d.wait_users(
        lambda us: us[("chain", "1")].state == "RUNNING" and us[("chain", "1")].pid,
        20,
        "the fixed strategy running again",
    )
    d.signal(signal.SIGTERM)
    assert await d.wait_exit(30) == 0, d.diagnose()
