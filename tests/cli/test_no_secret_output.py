"""Issue 12, secrets: the exchange answers with an error that echoes the request's Cookie
and csrftoken headers (the sim's ``echo_secrets`` fault); every command that prints
exchange text shows the error, and not one stored secret value, on stdout or stderr."""

from __future__ import annotations

import json

from exchange.sim.faults import ECHO_CODE
from tests.supervisor.harness import strategy

# session cookies as long as real ones: every value is worth masking
ACCOUNTS = {"1": "session-of-user-one-0123456789", "2": "session-of-user-two-9876543210"}


async def test_an_echoed_session_never_reaches_cli_output(deploy, sim):
    creds = {uid: sim.credentials(acct) for uid, acct in ACCOUNTS.items()}
    secrets = sorted({v for c in creds.values() for v in c.secret_values()})
    assert any(v.startswith("session-of-user") for v in secrets)
    d = deploy()
    d.store(creds)
    d.write_config([strategy("s1", ["1", "2"], target=100000, amount=10)])
    await sim.admin.set_faults(echo_secrets=True, paths=["user-volume"])

    outputs: dict[str, str] = {}

    async def run(*args: str, want: int) -> str:
        res = await d.acli(*args)
        assert res.returncode == want, (args, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr
        outputs[" ".join(args)] = res.stdout + res.stderr
        return res.stdout + res.stderr

    text = await run("volumes", want=1)
    assert "volume" in text and "target" in text  # the table
    rows = json.loads((await d.acli("volumes", "--json")).stdout)
    assert all("Illegal request headers" in r["error"] for r in rows), rows
    await run("volumes", "--json", want=1)
    await run("check", "--online", want=2)
    await run("users", "check", "--online", want=2)
    await run("users", "check", "1", "--online", want=2)

    # the supervisor's own volume check shows the error in status and in its log
    d.start(once=False, ALPHAVOL_STANDIN='{"trade_seconds": 0.05}')
    await d.wait_ready()
    await d.wait_users(
        lambda us: all(u.last_error for u in us.values()), 20, "the volume errors in status"
    )
    await run("status", want=0)
    await run("status", "--json", want=0)
    assert (await d.acli("shutdown")).returncode == 0
    assert await d.wait_exit(20) == 0
    for command, text in outputs.items():
        # the echoed message did reach the output (so this test can fail) ...
        assert "Illegal request headers" in text or ECHO_CODE in text, command
    # the supervisor's own output (its log and exit summary) need not show it
    outputs["run (stdout and stderr)"] = d.stdout + d.stderr
    for command, text in outputs.items():
        # ... and not one secret value of it
        leaked = [v for v in secrets if v in text]
        assert not leaked, f"{command} printed a stored secret"
