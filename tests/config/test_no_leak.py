"""A known session goes through every command of this part and through the logs; none of
its values may appear in any output, log line or error."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner

from config.cli import check, users
from config.credentials import CredentialStore, new_key
from config.loader import load_config
from config.logsetup import configure_logging
from exchange.auth import Credentials, csrf_for

from .conftest import SESSION_COOKIES, SESSION_HEADERS, bash_curl, secret_values

USER_VOLUME = "/bapi/defi/v1/private/wallet-direct/buw/wallet/today/user-volume"

# A second, expired session for user 2.
EXPIRED_COOKIES = {"p20t": "web.99.EXPIREDSESSIONSECRET00000", "cr00": "EXPIREDCR00SECRET0000000"}
EXPIRED_HEADERS = {"csrftoken": csrf_for(EXPIRED_COOKIES["cr00"]), "clienttype": "web"}
ALL_SECRETS = [*secret_values(), *EXPIRED_COOKIES.values(), EXPIRED_HEADERS["csrftoken"]]


def _fake_exchange() -> web.Application:
    """Only the user-volume endpoint: alive for user 1's session, expired otherwise."""

    async def user_volume(request: web.Request) -> web.Response:
        cookie = request.headers.get("cookie", "")
        if f"p20t={SESSION_COOKIES['p20t']}" in cookie:
            data = {"totalVolume": 12.5, "tradeVolumeInfoList": []}
            return web.json_response({"code": "000000", "data": data, "success": True})
        return web.json_response(
            {"code": "100002001", "message": f"expired, you sent {cookie}", "success": False}
        )

    app = web.Application()
    app.router.add_get(USER_VOLUME, user_volume)
    return app


def _config(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(
        f"""\
strategies:
  - strategy_id: koge
    target_token: KOGE
    target_volume: 100
    user_ids: [1, 2, 3]
exchange:
  base_url: {base_url}
  request_timeout_seconds: 5
logging:
  level: DEBUG
  format: json
""",
        encoding="utf-8",
    )
    return path


def _assert_clean(text: str, where: str) -> None:
    for value in ALL_SECRETS:
        assert value not in text, f"a secret value leaked into {where}"


async def test_no_secret_in_any_output(tmp_path, monkeypatch):
    key_file = tmp_path / "key"
    key_file.write_bytes(new_key())
    monkeypatch.setenv("ALPHAVOL_SECRET_KEY_FILE", str(key_file))
    server = TestServer(_fake_exchange(), host="127.0.0.1")
    await server.start_server()
    try:
        cfg_path = _config(tmp_path, str(server.make_url("")).rstrip("/"))
        curl1 = tmp_path / "user1.curl"
        curl1.write_text(bash_curl())
        expired = bash_curl(EXPIRED_COOKIES, EXPIRED_HEADERS)
        bad = bash_curl(SESSION_COOKIES, {**SESSION_HEADERS, "csrftoken": csrf_for("x")})
        runner = CliRunner()
        cfg = ["--config", str(cfg_path)]
        steps = [
            (users, ["add", "1", "--curl", str(curl1), "--label", "alice", *cfg], None, 0),
            (users, ["add", "2", "--curl", "-", *cfg], expired, 0),
            (users, ["add", "3", "--curl", "-", *cfg], bad, 2),  # csrf mismatch: refused
            (users, ["list", *cfg], None, 0),
            (users, ["check", *cfg], None, 2),  # user 3 has no session
            (users, ["check", "1", "--online", *cfg], None, 0),
            (users, ["check", "--online", *cfg], None, 2),  # 2 expired, 3 missing
            (check, [*cfg], None, 2),
            (check, ["--json", *cfg], None, 2),
            (users, ["remove", "2", *cfg], None, 0),
        ]
        outputs = []
        for command, args, stdin, want in steps:
            result = await asyncio.to_thread(runner.invoke, command, args, input=stdin)
            assert result.exit_code == want, (args, result.output)
            assert "Traceback" not in result.output
            outputs.append(result.output)
        joined = "\n".join(outputs)
        _assert_clean(joined, "CLI output")
        assert "user 1: alive" in joined
        assert "user 2: expired" in joined
        assert "not the MD5" in joined
        assert "cookies: cr00, logined, p20t, r20t" in joined
        assert "credentials_stored" in joined  # the logs went through the same output
    finally:
        await server.close()

    # The stored session works, is recorded as ok, and its values flow through logs.
    store = CredentialStore.open(load_config(cfg_path).paths)
    creds = store.get("1")
    assert creds == Credentials(cookies=SESSION_COOKIES, headers=creds.headers)
    assert store.list()[0].last_ok_at is not None
    for fmt in ("json", "console"):
        buf = io.StringIO()
        configure_logging("DEBUG", fmt, stream=buf)
        log = structlog.get_logger("leaktest")
        log.info("request_sent", headers=creds.headers, cookies=creds.cookies, creds=creds)
        log.debug("http_request", line=f"GET {USER_VOLUME} cookie={SESSION_COOKIES['p20t']}")
        log.warning(
            "nested", data={"list": [SESSION_COOKIES["cr00"], (SESSION_HEADERS["bnc-uuid"],)]}
        )
        try:
            raise RuntimeError(f"exchange said no to {SESSION_HEADERS['device-info']}")
        except RuntimeError as exc:
            log.exception("failed", error=exc)
        logging.getLogger("aiohttp.client").error(
            "connection reset, headers %s", dict(SESSION_HEADERS)
        )
        logging.getLogger("aiohttp.client").error("raw %r", SESSION_HEADERS["fvideo-token"])
        text = buf.getvalue()
        assert "request_sent" in text and "failed" in text and "connection reset" in text
        _assert_clean(text, f"{fmt} log")


def test_no_secret_in_a_real_cli_subprocess(tmp_path):
    cfg_path = _config(tmp_path, "http://127.0.0.1:9")
    curl = tmp_path / "s.curl"
    curl.write_text(bash_curl())
    exe = Path(sys.executable).parent / "alphavol"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPHAVOL", "CREDENTIALS"))}
    env["ALPHAVOL_CONFIG"] = str(cfg_path)
    texts = []
    for args in (
        ["users", "add", "1", "--curl", str(curl)],
        ["users", "list"],
        ["check", "--json"],
    ):
        proc = subprocess.run(
            [str(exe), *args], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        texts += [proc.stdout, proc.stderr]
        assert "Traceback" not in proc.stderr
    assert "stored in plain text" in texts[1]  # no key: `users add` warns
    assert '"user_id": "1"' in texts[4]
    _assert_clean("\n".join(texts), "subprocess output")
    # The plain store holds the values (that is the warning's point), but 0600.
    db = tmp_path / "var" / "data" / "credentials.sqlite"
    assert oct(db.stat().st_mode & 0o777) == "0o600"


async def _run_cli(exe: Path, args: list[str], env: dict[str, str], stdin: str | None = None):
    proc = await asyncio.create_subprocess_exec(
        str(exe),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(
        proc.communicate(stdin.encode() if stdin is not None else None), 60
    )
    return proc.returncode, out.decode(), err.decode()


async def test_no_secret_in_a_run_against_the_simulated_exchange(tmp_path):
    """Store a sim session through the CLI, run the service once to its target on the
    simulated exchange (real supervisor and user processes), and look for the session's
    values in every output and in every file the run left behind."""
    from exchange.sim.testing import SimHarness

    account = "LEAKTESTSESSIONp20t0042"
    key_file = tmp_path / "secret.key"
    key_file.write_bytes(new_key())
    async with SimHarness(fill_delay=0, seed=7) as sim:
        creds = sim.credentials(account)
        values = [v for v in creds.secret_values() if len(v) >= 6]
        assert account in values
        cfg_path = tmp_path / "cfg.yaml"
        cfg_path.write_text(
            f"""\
global_settings:
  default_trade_interval_seconds: 0
  default_volume_check_delay_seconds: 0.1
  order_timeout_seconds: 5
  stop_grace_seconds: 2
strategies:
  - strategy_id: koge
    target_token: KOGE
    target_volume: 60
    single_trade_amount_usdt: 30
    user_ids: [1]
exchange:
  base_url: {sim.base_url}
  ws_url: {sim.ws_url}
  request_timeout_seconds: 3
logging:
  level: DEBUG
  format: json
""",
            encoding="utf-8",
        )
        exe = Path(sys.executable).parent / "alphavol"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPHAVOL", "CREDENTIALS"))}
        env |= {"ALPHAVOL_CONFIG": str(cfg_path), "ALPHAVOL_SECRET_KEY_FILE": str(key_file)}
        texts: list[str] = []
        curl = bash_curl(creds.cookies, creds.headers)
        for args, stdin in (
            (["users", "add", "1", "--curl", "-"], curl),
            (["users", "check", "--online"], None),
            (["check", "--json"], None),
            (["run", "--once"], None),
            (["users", "list"], None),
        ):
            code, out, err = await _run_cli(exe, args, env, stdin)
            assert code == 0, (args, err[-2000:])
            texts += [out, err]
        joined = "\n".join(texts)
        assert "user 1: alive" in joined
        assert "http_request" in joined  # DEBUG request lines were logged
        assert '"target reached"' in joined or "target reached" in joined
        account_state = await sim.admin.account(account)
        assert account_state["oto_count"] >= 1  # the run really traded on the sim
    for value in values:
        assert value not in joined, "a session value leaked into the output of a run"
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != cfg_path and path != key_file:
            data = path.read_bytes()
            for value in values:
                assert value.encode() not in data, f"a session value was written to {path.name}"
