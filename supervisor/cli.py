"""The `alphavol` command line.

``run`` and ``quick`` run the supervisor in the foreground; ``status``, ``stop``, ``start``,
``reload`` and ``shutdown`` talk to a running one over its control socket (exit 1 with a
clear message when none runs); ``volumes`` asks the exchange directly.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from decimal import Decimal
from pathlib import Path

import click

from config.cli import check, config_option, users
from exchange.sim.cli import sim
from protocol import messages as m


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="alphavol")
def main() -> None:
    """alphavol: drive Binance Alpha accounts to a daily volume with OTO round trips."""


main.add_command(sim)
main.add_command(users)
main.add_command(check)


def _register_demo() -> None:
    from supervisor.demo import demo

    main.add_command(demo)


_register_demo()


def _load(config_path: str):
    """Load and validate the config; print every problem and exit 2 when it is broken."""
    try:
        from config.cli import load_or_exit
    except ImportError:
        load_or_exit = None
    if load_or_exit is not None:
        return load_or_exit(config_path)
    from config.loader import load_config

    try:
        return load_config(config_path)
    except Exception as exc:
        click.echo(f"alphavol: {exc}", err=True)
        sys.exit(2)


def _logging(config) -> None:
    try:
        from config.logsetup import configure_logging
    except ImportError:
        return
    configure_logging(config.logging.level, config.logging.format, stream=sys.stderr)


def _runtime_dir(config_path: str) -> Path:
    """Where the control socket is. Read leniently: `reload` must still reach the
    supervisor (and get the errors back) when the file on disk is broken."""
    from config.loader import load_config

    try:
        return Path(load_config(config_path).paths.runtime_dir)
    except Exception:
        pass
    import os

    import yaml

    try:
        with open(config_path) as f:
            raw = (yaml.safe_load(f) or {}).get("paths", {}).get("runtime_dir", "./var/run")
    except (OSError, yaml.YAMLError, AttributeError):
        _load(config_path)  # prints why and exits 2
        raise
    p = Path(os.path.expanduser(str(raw)))
    return (p if p.is_absolute() else Path(config_path).resolve().parent / p).resolve()


def _ask(config_path: str, req: m.Request, timeout: float = 2.0) -> m.Reply:
    from supervisor.client import ControlClient, SupervisorNotRunning

    try:
        reply = ControlClient(_runtime_dir(config_path)).request(req, timeout=timeout)
    except SupervisorNotRunning as exc:
        click.echo(f"alphavol: {exc}", err=True)
        sys.exit(1)
    if isinstance(reply, m.ErrorReply):
        click.echo(f"alphavol: {reply.message}", err=True)
        sys.exit(1)
    return reply


@main.command("run")
@config_option
@click.option("--once", is_flag=True, help="Do today's work, then exit (no daily restart).")
def run(config_path: str, once: bool) -> None:
    """Run the supervisor in the foreground (what the systemd service runs)."""
    from supervisor.arbiter import run_supervisor

    config = _load(config_path)
    _logging(config)
    sys.exit(run_supervisor(config, once=once))


@main.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--watch", is_flag=True, help="Refresh in place every second.")
def status(config_path: str, as_json: bool, watch: bool) -> None:
    """Per strategy and user: state, pid, restarts, volume, batch, cost, last error, ETA."""
    from supervisor.render import to_json, to_text

    while True:
        reply = _ask(config_path, m.StatusRequest())
        assert isinstance(reply, m.StatusReply)
        text = json.dumps(to_json(reply), indent=2) if as_json else to_text(reply)
        if not watch:
            click.echo(text)
            return
        click.echo("\x1b[H\x1b[2J" + text, nl=True)
        try:
            time.sleep(1.0)
        except KeyboardInterrupt:
            return


@main.command("stop")
@config_option
@click.argument("strategy", required=False)
@click.option("--user", "user_id", help="Only this user.")
@click.option("--now", is_flag=True, help="Cancel and sell at once instead of draining.")
def stop(config_path: str, strategy: str | None, user_id: str | None, now: bool) -> None:
    """Stop users (all, a strategy's, or one): drain by default."""
    reply = _ask(config_path, m.StopRequest(strategy_id=strategy, user_id=user_id, now=now))
    click.echo(getattr(reply, "message", "ok"))


@main.command("start")
@config_option
@click.argument("strategy", required=False)
@click.option("--user", "user_id", help="Only this user.")
def start(config_path: str, strategy: str | None, user_id: str | None) -> None:
    """Queue stopped, finished or FATAL users again."""
    reply = _ask(config_path, m.StartRequest(strategy_id=strategy, user_id=user_id))
    click.echo(getattr(reply, "message", "ok"))


@main.command("reload")
@config_option
def reload(config_path: str) -> None:
    """Reread the config file (a broken one is refused and the old one kept)."""
    reply = _ask(config_path, m.ReloadRequest(), timeout=5.0)
    click.echo(getattr(reply, "message", "ok"))


@main.command("shutdown")
@config_option
@click.option("--now", is_flag=True, help="Stop users at once instead of draining.")
def shutdown(config_path: str, now: bool) -> None:
    """Stop every user and exit the supervisor."""
    reply = _ask(config_path, m.ShutdownRequest(now=now))
    click.echo(getattr(reply, "message", "ok"))


@main.command("volumes")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def volumes(config_path: str, as_json: bool) -> None:
    """Every user's volume today, asked concurrently; starts nothing."""
    from config.credentials import CredentialStore
    from supervisor.volumes import check_volumes

    config = _load(config_path)
    _logging(config)  # logs to stderr: stdout is the answer
    store = CredentialStore.open(config.paths)
    results = asyncio.run(check_volumes(config.effective(), store.get, config.exchange))
    if as_json:
        out = [
            {
                "user_id": r.user_id,
                "strategy_id": r.strategy_id,
                "token": r.token,
                "basis": r.basis,
                "current_volume": None if r.current is None else str(r.current),
                "target_volume": str(r.target),
                "at_target": r.at_target,
                "error": r.error,
            }
            for r in results
        ]
        click.echo(json.dumps(out, indent=2))
    else:
        for r in results:
            cur = "?" if r.current is None else f"{r.current:f}"
            mark = "at target" if r.at_target else (r.error or "under target")
            click.echo(
                f"{r.strategy_id:<12} user {r.user_id:<8} {r.token:<8} {cur}/{r.target:f}"
                f" ({r.basis})  {mark}"
            )
    sys.exit(1 if any(r.error for r in results) else 0)


@main.command("quick")
@config_option
@click.option("--token", required=True, help="Token symbol, e.g. KOGE.")
@click.option("--chain", default="BSC", show_default=True)
@click.option("--volume", required=True, type=Decimal, help="Target volume (reported).")
@click.option("--amount", required=True, type=Decimal, help="USDT per round trip.")
@click.option("--user", "user_ids", required=True, multiple=True, help="User id (repeatable).")
@click.option(
    "--interval", default=1.0, show_default=True, type=float, help="Seconds between trades."
)
def quick(config_path, token, chain, volume, amount, user_ids, interval) -> None:
    """One strategy from flags, run once in the foreground (same processes and safety as run).

    Exchange, paths and credentials come from the config file when it exists."""
    from config.loader import config_from_dict
    from supervisor.arbiter import run_supervisor

    data: dict = {}
    base_dir = Path.cwd()
    if Path(config_path).exists():
        base = _load(config_path)
        base_dir = Path(base.source).parent
        data = {
            "exchange": {
                "base_url": base.exchange.base_url,
                "ws_url": base.exchange.ws_url,
                "request_timeout_seconds": base.exchange.request_timeout_seconds,
            },
            "paths": {"data_dir": base.paths.data_dir, "runtime_dir": base.paths.runtime_dir},
            "logging": {"level": base.logging.level, "format": base.logging.format},
        }
    data["strategies"] = [
        {
            "strategy_id": "quick",
            "strategy_name": f"quick {token}",
            "target_token": token,
            "target_chain": chain,
            "target_volume": volume,
            "single_trade_amount_usdt": amount,
            "trade_interval_seconds": interval,
            "user_ids": list(user_ids),
        }
    ]
    try:
        config = config_from_dict(data, source=str(Path(config_path).resolve()), base_dir=base_dir)
    except Exception as exc:
        click.echo(f"alphavol: {exc}", err=True)
        sys.exit(2)
    _logging(config)
    sys.exit(run_supervisor(config, once=True))
