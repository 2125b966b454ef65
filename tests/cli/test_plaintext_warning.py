"""Issue 20 item 9: sessions stored without a key are worth one warning where it matters,
at `users add` and when `run` starts, and never inside the output of the commands that only
read the store (`users list`, `check`, `volumes`, `history` ...). Real subprocesses, the
simulated exchange, a real user process."""

from __future__ import annotations

import json

from tests.cli.conftest import alphavol, clean_env
from tests.supervisor.harness import ROOT, strategy


def curl_text(creds) -> str:
    headers = " ".join(f"-H '{k}: {v}'" for k, v in creds.headers.items())
    cookies = "; ".join(f"{k}={v}" for k, v in creds.cookies.items())
    return f"curl 'https://www.binance.com/bapi/x' {headers} -b '{cookies}'\n"


def warnings_in(text: str) -> int:
    return text.count("plain text") + text.count("credentials_plaintext")


async def test_the_plaintext_warning_is_said_at_users_add_and_run_start_only(deploy, sim):
    d = deploy()  # a config on the sim; the store is made by `users add`, without a key
    d.write_config([strategy("s1", ["1"], target=30, amount=10)])
    env = clean_env(ALPHAVOL_CONFIG=str(d.config_path))
    curl = d.dir / "session.curl"
    curl.write_text(curl_text(sim.credentials("acct1")))

    added = await alphavol("users", "add", "1", "--curl", str(curl), env=env, cwd=d.dir)
    assert added.returncode == 0, added.stderr
    said = [line for line in added.stderr.splitlines() if "plain text" in line]
    assert len(said) == 1 and "alphavol users keygen" in said[0], added.stderr
    assert "credentials_plaintext" not in added.stderr  # words, not a log line

    for args, code in (
        (("users", "list"), 0),
        (("users", "check"), 0),
        (("check",), 0),
        (("volumes", "--json"), 0),
        (("history", "--json"), 0),
    ):
        res = await alphavol(*args, env=env, cwd=d.dir)
        assert res.returncode == code, (args, res.stdout, res.stderr)
        assert warnings_in(res.stdout + res.stderr) == 0, (args, res.stderr)
    volumes = json.loads((await alphavol("volumes", "--json", env=env, cwd=d.dir)).stdout)
    assert volumes[0]["user_id"] == "1" and volumes[0]["error"] is None  # the session works

    run_env = {
        **env,
        "ALPHAVOL_CHILD_TARGET": "tests.supervisor.standin:child_main",
        "ALPHAVOL_STANDIN": '{"trade_seconds": 0.01}',
        "PYTHONPATH": str(ROOT),
    }
    ran = await alphavol("run", "--once", env=run_env, cwd=d.dir, within=60)
    assert ran.returncode == 0, ran.stderr[-3000:]
    events = [json.loads(x) for x in ran.stderr.splitlines() if x.startswith("{")]
    plain = [e for e in events if e.get("event") == "credentials_plaintext"]
    assert len(plain) == 1 and plain[0]["level"] == "warning", ran.stderr[-3000:]
    assert "alphavol users keygen" in plain[0]["hint"]
    started = next(i for i, e in enumerate(events) if e.get("event") == "supervisor_started")
    assert events.index(plain[0]) < started  # said at start
