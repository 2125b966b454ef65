"""`alphavol demo`: the whole job on the simulated exchange, in under a minute.

What it does, in order, exactly as a user would by hand:

1. starts ``alphavol sim --port 0`` (a free loopback port) and reads its URLs;
2. writes a demo config (two strategies: KOGE with mulPoint 1, AOP with mulPoint 4; three
   users) and a credentials store with made-up sessions into a temporary directory, and
   seeds user 3's AOP volume above target so the supervisor skips that user;
3. runs the real supervisor (``alphavol run``), which forks the real user processes;
   shows live progress from its control socket; once every user is finished (the
   supervisor then waits for the next UTC day) takes that status as final and asks the
   supervisor to shut down, as ``alphavol shutdown`` would;
4. reads the simulator's own record (orders, balances, volume) and prints a summary per
   user and strategy, with alphavol's figures beside the exchange's, and whether anything
   was left open.

Ctrl+C is forwarded once to the supervisor, which drains its users gracefully (a second
Ctrl+C stops them at once); the summary still prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import yaml

from protocol import messages as m

ALPHAVOL = [sys.executable, "-m", "supervisor"]

# user id -> the simulator account (its p20t session cookie)
ACCOUNTS = {"1": "demo-alice", "2": "demo-bob", "3": "demo-carol"}
STRATEGIES: list[dict[str, Any]] = [
    {
        "strategy_id": "koge_demo",
        "strategy_name": "KOGE demo (mulPoint 1)",
        "enabled": True,
        "target_token": "KOGE",
        "target_chain": "BSC",
        "target_volume": 400,
        "single_trade_amount_usdt": 25,
        "user_ids": [1, 2],
    },
    {
        "strategy_id": "aop_demo",
        "strategy_name": "AOP demo (mulPoint 4)",
        "enabled": True,
        "target_token": "AOP",
        "target_chain": "BSC",
        "target_volume": 1024,
        "single_trade_amount_usdt": 20,
        "user_ids": [2, 3],
    },
]
ALREADY_AT_TARGET = ("3", "AOP", Decimal("1100"))  # user, token, seeded volume
SIM_ARGS = ["--seed", "7", "--fill-delay", "0.05", "--volume-lag", "0.3"]


# --------------------------------------------------------------------------------------
# the simulated exchange, as a subprocess
# --------------------------------------------------------------------------------------


class SimProcess:
    def __init__(self, workdir: Path) -> None:
        self.log = open(workdir / "sim.log", "wb")
        self.proc = subprocess.Popen(
            [*ALPHAVOL, "sim", "--host", "127.0.0.1", "--port", "0", *SIM_ARGS],
            stdout=subprocess.PIPE,
            stderr=self.log,
            start_new_session=True,  # Ctrl+C reaches the demo only; we stop the sim last
        )
        urls: dict[str, str] = {}
        assert self.proc.stdout is not None
        while len(urls) < 2:
            line = self.proc.stdout.readline().decode()
            if not line:
                raise click.ClickException("the simulated exchange did not start (see sim.log)")
            key, _, value = line.strip().partition("=")
            if key in ("base_url", "ws_url"):
                urls[key] = value
        self.base_url, self.ws_url = urls["base_url"], urls["ws_url"]

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.base_url}/sim/v1{path}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            payload = json.loads(resp.read())
        if not payload.get("ok"):
            raise click.ClickException(f"sim admin {path}: {payload.get('error')}")
        return payload["data"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --------------------------------------------------------------------------------------
# the deployment: config + credentials in a temporary directory
# --------------------------------------------------------------------------------------


def write_deployment(workdir: Path, sim: SimProcess, key: bytes) -> Path:
    from config.credentials import CredentialStore
    from exchange.sim.testing import SimHarness

    data, run = workdir / "data", workdir / "run"
    doc = {
        "global_settings": {
            "max_concurrent_users": 10,
            "default_trade_interval_seconds": 0,
            "default_volume_check_delay_seconds": 2,
            "default_buy_offset_percentage": 2,
            "default_sell_profit_percentage": 2,
            "order_timeout_seconds": 20,
            "stop_grace_seconds": 10,
        },
        "exchange": {"base_url": sim.base_url, "ws_url": sim.ws_url, "request_timeout_seconds": 5},
        "paths": {"data_dir": str(data), "runtime_dir": str(run)},
        "schedule": {"daily_restart": False},
        "logging": {"level": "INFO", "format": "json"},
        "strategies": STRATEGIES,
    }
    config_path = workdir / "demo_config.yaml"
    config_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    store = CredentialStore(data / "credentials.sqlite", key=key)
    sessions = SimHarness()  # only its made-up, valid sessions; the sim runs as a process
    for user_id, account in ACCOUNTS.items():
        store.put(user_id, sessions.credentials(account), label=f"demo {account}")
    user, token, volume = ALREADY_AT_TARGET
    sim.admin("/volume", {"account": ACCOUNTS[user], "token": token, "volume": str(volume)})
    return config_path


# --------------------------------------------------------------------------------------
# live progress
# --------------------------------------------------------------------------------------


def _status(runtime: Path) -> m.StatusReply | None:
    from supervisor.client import ControlClient, SupervisorNotRunning

    try:
        reply = ControlClient(runtime).request(m.StatusRequest(), timeout=1.0)
    except SupervisorNotRunning:
        return None
    return reply if isinstance(reply, m.StatusReply) else None


# --------------------------------------------------------------------------------------
# the summary: alphavol's figures beside the exchange's record
# --------------------------------------------------------------------------------------


def exchange_record(account: dict[str, Any], token: str, alpha_id: str) -> dict[str, Any]:
    """What the simulator itself recorded for one account and token."""
    symbol = f"{alpha_id}USDT"
    orders = [o for o in account["orders"] if o["symbol"] == symbol]
    otos = [o for o in orders if o.get("position") == "OTO_WORKING"]
    open_orders = [o for o in orders if o["status"] in ("NEW", "PENDING", "PARTIALLY_FILLED")]
    held = Decimal(account["balances"].get(alpha_id, {}).get("free", "0"))
    return {
        "volume": Decimal(str(account["volume_now"].get(token, "0"))),
        "otos": len(otos),
        "open_orders": len(open_orders),
        "tokens_left": held,
    }


def build_summary(
    sim: SimProcess, before: dict[str, Any], final: m.StatusReply | None, seconds: float
) -> dict[str, Any]:
    state = sim.admin("/state")
    alpha_ids = {t["symbol"]: t["alphaId"] for t in _token_list(sim)}
    statuses = {}
    if final is not None:
        statuses = {(u.strategy_id, u.user_id): u for s in final.strategies for u in s.users}
    rows = []
    for strat in STRATEGIES:
        token = strat["target_token"]
        for uid in map(str, strat["user_ids"]):
            account = ACCOUNTS[uid]
            acct_now = state["accounts"].get(account) or sim.admin(f"/accounts/{account}")
            acct_before = before.get(account, {"volume_now": {}})
            rec = exchange_record(acct_now, token, alpha_ids[token])
            u = statuses.get((strat["strategy_id"], uid))
            usdt_spent = Decimal(before.get(account, {}).get("usdt", "10000")) - Decimal(
                acct_now["balances"]["USDT"]["free"]
            )
            rows.append(
                {
                    "strategy_id": strat["strategy_id"],
                    "user_id": uid,
                    "token": token,
                    "state": u.state if u else "UNKNOWN",
                    "start_volume": str(Decimal(str(acct_before["volume_now"].get(token, "0")))),
                    "final_volume": str(rec["volume"]),
                    "target_volume": str(strat["target_volume"]),
                    "reached": rec["volume"] >= Decimal(str(strat["target_volume"])),
                    "trades": u.trades if u else 0,
                    "exchange_otos": rec["otos"],
                    "cost_usdt": str(u.cost_today) if u else "0",
                    "account_usdt_spent": str(usdt_spent),
                    "open_orders": rec["open_orders"],
                    "tokens_left": str(rec["tokens_left"]),
                    "dust_usdt": str(
                        (rec["tokens_left"] * Decimal(state["prices"][token])).quantize(
                            Decimal("0.00000001")
                        )
                    ),
                    "reported_volume": str(u.current_volume) if u and u.current_volume else None,
                }
            )
    return {
        "seconds": round(seconds, 1),
        "nothing_left_open": all(r["open_orders"] == 0 for r in rows),
        "rows": rows,
    }


def _token_list(sim: SimProcess) -> list[dict[str, Any]]:
    url = f"{sim.base_url}/bapi/defi/v1/public/wallet-direct/buw/wallet/cex/alpha/all/token/list"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())["data"]


SUMMARY_HEADERS = [
    *("strategy", "user", "state", "start", "final", "target"),
    *("trades", "cost USDT", "open", "dust USDT"),
]


def print_table(summary: dict[str, Any]) -> None:
    """The summary as a table: alphavol's figures beside the exchange's own record."""
    from config.output import say, show
    from supervisor.render import money, target, volume
    from supervisor.tables import summary_table

    rows = [
        (
            r["strategy_id"],
            r["user_id"],
            r["state"],
            volume(Decimal(r["start_volume"])),
            volume(Decimal(r["final_volume"])),
            target(Decimal(r["target_volume"])),
            str(r["trades"]),
            money(r["cost_usdt"]),
            str(r["open_orders"]),
            money(r["dust_usdt"]),
        )
        for r in summary["rows"]
    ]
    say()
    show(summary_table(SUMMARY_HEADERS, "lll" + "r" * 7, rows))
    verdict = "nothing left open" if summary["nothing_left_open"] else "OPEN ORDERS LEFT"
    say(f"\n{summary['seconds']} s; {verdict}; figures read back from the exchange.")
    say(
        "trades: round trips today (the live view's batch i/N counts within one batch).\n"
        "dust: the value of tokens below the lot step, which no order can sell (the buy\n"
        "fee is taken in the token, the sell is rounded down to the step); it stays held."
    )


# --------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------


@click.command("demo")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--keep", is_flag=True, help="Keep the temporary directory (logs, journals).")
def demo(as_json: bool, keep: bool) -> None:
    """Run the whole job on the built-in simulated exchange (no account needed)."""
    from config.logsetup import configure_logging

    configure_logging("WARNING", "console", stream=sys.stderr)  # stdout is for the summary
    workdir = Path(tempfile.mkdtemp(prefix="alphavol-demo-", dir="/tmp"))
    from config.output import say as _say

    def say(text: str) -> None:
        _say(text, err=as_json)

    interrupts = Interrupts()
    signal.signal(signal.SIGINT, interrupts)  # from here on Ctrl+C is forwarded, not raised
    sim = SimProcess(workdir)
    sup: subprocess.Popen | None = None
    try:
        say(f"simulated exchange at {sim.base_url} (workdir {workdir})")
        from config.credentials import new_key

        key = new_key()  # the demo encrypts its made-up sessions, as a real setup should
        config_path = write_deployment(workdir, sim, key)
        before = {}
        for acct in ACCOUNTS.values():
            rec = sim.admin(f"/accounts/{acct}")
            before[acct] = {
                "volume_now": rec["volume_now"],
                "usdt": rec["balances"]["USDT"]["free"],
            }
        say("supervisor: alphavol run (3 users, 2 strategies; user 3 is already at target)")
        env = {
            **os.environ,
            "ALPHAVOL_CONFIG": str(config_path),
            "ALPHAVOL_SECRET_KEY": key.decode(),
        }
        started = time.monotonic()
        sup = subprocess.Popen(
            [*ALPHAVOL, "run", "--config", str(config_path)],
            stdout=open(workdir / "supervisor.out", "wb"),
            stderr=open(workdir / "supervisor.log", "wb"),
            env=env,
            start_new_session=True,
        )
        final = _watch_with_view(sup, workdir / "run", interrupts)
        code = sup.wait()
        summary = build_summary(sim, before, final, time.monotonic() - started)
        summary["supervisor_exit"] = code
        summary["interrupted"] = interrupts.count > 0
        if as_json:
            from config.output import say_json

            say_json(summary)
        else:
            print_table(summary)
        if code != 0 or not summary["nothing_left_open"]:
            say(f"supervisor exited with {code}; logs in {workdir}")
            keep = True
            sys.exit(1)
    finally:
        if sup is not None and sup.poll() is None:
            os.killpg(sup.pid, signal.SIGKILL)
            sup.wait()
        sim.stop()
        if keep:
            say(f"kept {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


class Interrupts:
    """Ctrl+C during the demo: the handler only counts; the watch loop forwards each one
    to the supervisor as a SIGINT (first: drain, second: stop now)."""

    def __init__(self) -> None:
        self.count = 0
        self.forwarded = 0

    def __call__(self, signum: int, frame: object) -> None:
        self.count += 1


def _watch_with_view(
    sup: subprocess.Popen, runtime: Path, interrupts: Interrupts
) -> m.StatusReply | None:
    """``_watch`` under the live progress view (the same as `status --watch`) on a
    terminal; silently otherwise."""
    if not sys.stderr.isatty():
        return _watch(sup, runtime, None, interrupts)
    from supervisor.liveview import LiveStatus

    with LiveStatus(None, err=True) as view:
        return _watch(sup, runtime, view, interrupts)


def _watch(
    sup: subprocess.Popen, runtime: Path, view: Any, interrupts: Interrupts
) -> m.StatusReply | None:
    """Poll status until the day's work is done (then shut the supervisor down) or the
    supervisor exits; forward every Ctrl+C as one SIGINT."""
    from config.output import say
    from supervisor.client import ControlClient, SupervisorNotRunning

    last: m.StatusReply | None = None
    while sup.poll() is None:
        while interrupts.forwarded < interrupts.count:
            interrupts.forwarded += 1
            word = "drain" if interrupts.forwarded == 1 else "stop now"
            note = f"Ctrl+C: asking the supervisor to {word}"
            if view is not None:
                view.print_above(note)
            else:
                say(note, err=True)
            sup.send_signal(signal.SIGINT)
        reply = _status(runtime)
        if reply is not None:
            last = reply
            if view is not None:
                view.show(reply)
            if reply.phase == "waiting_next_day":  # every user finished: final figures
                with contextlib.suppress(SupervisorNotRunning):
                    ControlClient(runtime).request(m.ShutdownRequest(), timeout=2.0)
                sup.wait(30)
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            sup.wait(0.25)
    return last
