"""Issue 20, item 4: every notification's advice is a command that works. Real users on
the simulated exchange get into each kind of trouble the sim can cause; the test reads the
"What to do" of the notification each one sends, does what it says (the part a person
does in a browser or wallet is done on the sim), runs the `alphavol` commands it names,
and sees the promised effect: the user trading again. Every advice of ``alerts.TODO`` is
also checked to name only commands and options that exist."""

from __future__ import annotations

import re
import shlex
from decimal import Decimal

import pytest
from click.testing import CliRunner

from supervisor.alerts import TODO
from tests.config.conftest import bash_curl
from tests.notify_receiver import Receiver
from tests.supervisor.harness import Deployment, strategy
from tests.supervisor.test_notifications import about, notify_section
from tests.supervisor.test_real_users import FAST

ACCOUNTS = {"1": "advice-one", "2": "advice-two", "3": "advice-three", "4": "advice-four"}
COMMAND = re.compile(r"`(alphavol [^`]+)`")


def advice(message: dict) -> list[list[str]]:
    """The `alphavol ...` commands of a notification's "What to do", as argv lists."""
    todo = message["message"].split("What to do:", 1)[1]
    return [shlex.split(c)[1:] for c in COMMAND.findall(todo)]


@pytest.mark.parametrize("event", sorted(TODO))
def test_every_advice_names_commands_that_exist(event, tmp_path):
    from supervisor.cli import main

    commands = [shlex.split(c)[1:] for c in COMMAND.findall(TODO[event].format(u="7"))]
    assert commands, TODO[event]
    for argv in commands:
        argv = [str(tmp_path / "curl.txt") if a == "FILE" else a for a in argv]
        res = CliRunner().invoke(main, [*argv, "--help"])
        assert res.exit_code == 0 and "Usage:" in res.output, (argv, res.output)


async def follow(d: Deployment, message: dict, curl_file) -> None:
    """Run the commands a notification advises, in order; each must succeed."""
    for argv in advice(message):
        argv = [str(curl_file) if a == "FILE" else a for a in argv]
        res = await d.acli(*argv)
        assert res.returncode == 0, (argv, res.stdout, res.stderr)


async def test_following_each_notification_gets_the_user_trading_again(deploy, sim, tmp_path):
    async with Receiver() as rx:
        d: Deployment = deploy()
        d.store({u: sim.credentials(a) for u, a in ACCOUNTS.items()})
        strategies = [
            strategy("koge", ["1", "2", "3"], target=10**9, amount=10),
            strategy("aop", ["4"], target=10**9, amount=10, token="KOGE"),
        ]
        d.write_config(strategies, sections=notify_section(rx))
        d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
        await d.wait_ready()
        await d.trading("1234", within=40)

        # trouble: an expired session, a risk challenge, an empty wallet, a typo on reload
        await sim.admin.set_faults(session_expired=[ACCOUNTS["1"]], risk_challenge=[ACCOUNTS["2"]])
        await sim.admin.set_balance(ACCOUNTS["3"], "USDT", Decimal(5))
        typo = [strategies[0], {**strategies[1], "target_token": "KOGEE"}]
        d.write_config(typo, sections=notify_section(rx))
        assert (await d.acli("reload")).returncode == 0  # the token is asked at run time
        await rx.wait(lambda r: all(about(r, u) for u in ACCOUNTS), 40, "a message per user")
        users = await d.wait_users(
            lambda us: all(u.state == "FATAL" for u in us.values()), 20, "all four FATAL"
        )
        trades = {k: u.trades for k, u in users.items()}
        msgs = {u: about(rx, u)[0] for u in ACCOUNTS}
        assert "session expired" in msgs["1"]["title"] and "risk challenge" in msgs["2"]["title"]
        assert "insufficient balance" in msgs["3"]["title"] and "bad setup" in msgs["4"]["title"]

        # what a person does: log in again, pass the verification, top up, fix the typo
        await sim.admin.set_faults(session_expired=[], risk_challenge=[])
        fresh = sim.credentials(ACCOUNTS["1"])
        curl = tmp_path / "curl.txt"
        curl.write_text(bash_curl(fresh.cookies, fresh.headers))
        await sim.admin.set_balance(ACCOUNTS["3"], "USDT", Decimal(10_000))
        for u in ("1", "2", "3"):
            await follow(d, msgs[u], curl)
        check, reload = advice(msgs["4"])  # check --online shows the line; fix; reload
        assert (check, reload) == (["check", "--online"], ["reload"]), msgs["4"]["message"]
        shown = await d.acli(*check)
        assert shown.returncode == 2 and "KOGEE is not in the exchange's token list" in (
            shown.stderr
        ), shown.stderr
        d.write_config(strategies, sections=notify_section(rx))
        assert (await d.acli(*reload)).returncode == 0
        await d.wait_users(
            lambda us: all(u.state == "RUNNING" and u.trades > trades[k] for k, u in us.items()),
            40,
            "every user trading again",
        )
        d.signal(15)
        assert await d.wait_exit(30) == 0, d.diagnose()
