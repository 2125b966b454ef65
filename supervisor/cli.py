"""The `alphavol` command line.

``run`` and ``quick`` run the supervisor in the foreground (on a terminal under the live
progress view of ``supervisor.liveview``); ``status``, ``stop``, ``start``, ``reload`` and
``shutdown`` talk to a running one (``supervisor.control_cli``); ``volumes`` asks the
exchange directly. Every command prints through ``config.output`` (one redaction) and
turns the operator's own mistakes into one line and exit status 2 (the README lists
every exit status).
"""

from __future__ import annotations

from supervisor.ownership import refuse_foreign_packages

refuse_foreign_packages()  # before importing the rest: it may not be ours

import asyncio  # noqa: E402
import importlib  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from decimal import Decimal  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any, TypeVar  # noqa: E402

import click  # noqa: E402

from config.cli import config_option, load_or_exit, open_store  # noqa: E402
from config.output import (  # noqa: E402
    EXIT_FAILED,
    EXIT_OK,
    fail,
    operator_errors,
    redacted_streams,
    say_json,
    show,
)

# commands defined elsewhere, imported only when used (`alphavol status` need not load
# the simulator's web server)
LAZY = {
    "check": "config.cli:check",
    "dashboard": "supervisor.dashboard.cli:dashboard",
    "demo": "supervisor.demo:demo",
    "history": "supervisor.books_cli:history",
    "init": "config.scaffold:init",
    "notify": "supervisor.books_cli:notify",
    "reload": "supervisor.control_cli:reload",
    "shutdown": "supervisor.control_cli:shutdown",
    "sim": "exchange.sim.cli:sim",
    "start": "supervisor.control_cli:start",
    "status": "supervisor.control_cli:status",
    "stop": "supervisor.control_cli:stop",
    "users": "config.cli:users",
}


class AlphavolGroup(click.Group):
    """Every subcommand runs with its output redacted and its errors turned into one line
    (exit 2 for the operator's own mistakes); most are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY and name not in self.commands:
            module, _, attr = LAZY[name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        with redacted_streams(), operator_errors():
            return super().invoke(ctx)


if TYPE_CHECKING:
    from config.loader import AppConfig

F = TypeVar("F", bound=Callable[..., Any])


@click.group(cls=AlphavolGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="alphavol")
def main() -> None:
    """alphavol: drive Binance Alpha accounts to a daily volume with OTO round trips."""


def _logging(config: AppConfig, *, background: bool = False) -> None:
    from config.logsetup import configure_logging

    configure_logging(
        config.logging.level, config.logging.format, stream=sys.stderr, background=background
    )


def _fork_server_first() -> None:
    """Before anything else (reading the config leaves garbage in the heap): the fork
    server is forked from a process that has only imported what user processes need, so
    their pages stay shared (see ``supervisor.spawn``)."""
    from supervisor.spawn import start_fork_server

    start_fork_server()


def supervise(
    config: Any,
    *,
    once: bool,
    verbose: bool = False,
    plain: bool = False,
    config_path: str | None = None,
) -> int:
    """Run the supervisor in this process after checking what an operator can get wrong
    (the credentials store and its key, writable directories, and with ``config_path``
    every token and chain against the exchange's list): those exit 2 here, with one line
    each, instead of a traceback and a restart loop under systemd."""
    from config.preflight import require_writable_dirs
    from supervisor.service import run_supervisor

    def prepare() -> dict[str, Any]:
        require_writable_dirs(config.paths)
        if config.store is not None:  # a pool node reads the store once it reaches it
            if config_path is not None:  # a wrong token or chain: exit 2 (unchecked when the
                from supervisor.tokencheck import check_at_start  # exchange is silent: the

                check_at_start(config, config_path)  # users it claims check their own)
            return {}
        store = open_store(config)
        store.warn_if_plain()  # once, at start (the commands that only read it are quiet)
        if config_path is None:  # `quick`: its strategy comes from flags
            return {"credentials": store}
        from supervisor.tokencheck import check_at_start

        # exit 2 on a token or chain the exchange does not list; None once checked
        return {"credentials": store, "token_check": check_at_start(config, config_path)}

    if sys.stdout.isatty() and not plain:
        from supervisor.liveview import run_with_view

        return run_with_view(config, once=once, verbose=verbose, prepare=prepare)
    _logging(config, background=True)  # its event loop never waits on a log write
    return run_supervisor(config, once=once, out=sys.stdout, **prepare())


def _view_options(fn: F) -> F:
    fn = click.option(
        "-v", "--verbose", is_flag=True, help="On a terminal: show routine INFO log lines too."
    )(fn)
    return click.option(
        "--plain", is_flag=True, help="On a terminal too: log lines only, no live view."
    )(fn)


@main.command("run")
@config_option
@click.option("--once", is_flag=True, help="Do today's work, then exit (no daily restart).")
@click.option(
    "--strategy",
    "strategy_ids",
    multiple=True,
    metavar="ID",
    help="Run only this strategy (repeatable); the others are not checked or traded.",
)
@click.option(
    "--node",
    metavar="NAME",
    default=None,
    help="This host's name in a pool (store:); default $ALPHAVOL_NODE, else the hostname.",
)
@_view_options
def run(
    config_path: str,
    once: bool,
    strategy_ids: tuple[str, ...],
    node: str | None,
    verbose: bool,
    plain: bool,
) -> None:
    """Run the supervisor in the foreground (what the systemd service runs).

    On a terminal it shows the live progress view (warnings and errors above it); without
    one (systemd, a pipe) it writes JSON log lines, as configured."""
    _fork_server_first()
    if node:
        os.environ["ALPHAVOL_NODE"] = node.strip()  # supervisor.pool.node.node_name
    config = load_or_exit(config_path)
    if strategy_ids:
        config = select_strategies(config, strategy_ids)
    sys.exit(supervise(config, once=once, verbose=verbose, plain=plain, config_path=config_path))


def select_strategies(config: Any, strategy_ids: tuple[str, ...]) -> Any:
    """The config with only these strategies to run; an unknown or disabled id is the
    operator's mistake (exit 2), named with the known ones."""
    import difflib

    known = [s.strategy_id for s in config.strategies]
    for sid in strategy_ids:
        if sid not in known:
            close = difflib.get_close_matches(sid, known, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            fail(f"--strategy {sid!r}: no such strategy; {hint}known: {', '.join(known)}")
        if not next(s for s in config.strategies if s.strategy_id == sid).enabled:
            fail(f"--strategy {sid!r}: the strategy is disabled (enabled: false in the config)")
    return config.selecting(list(dict.fromkeys(strategy_ids)))


@main.command("volumes")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def volumes(config_path: str, as_json: bool) -> None:
    """Every user's volume today, asked concurrently; starts nothing (exit 1 when a
    user's volume could not be read)."""
    from supervisor.volumes import check_volumes

    config = load_or_exit(config_path)
    _logging(config)  # logs to stderr: stdout is the answer
    store = open_store(config)
    results = asyncio.run(
        check_volumes(
            config.effective(),
            lambda uid: store.get(uid).routed(config.proxy_for(uid)),  # the user's route
            config.exchange,
        )
    )
    if as_json:
        say_json(
            [
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
        )
    else:
        from supervisor.tables import volumes_table

        show(volumes_table(results))
    sys.exit(EXIT_FAILED if any(r.error for r in results) else EXIT_OK)


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
@_view_options
def quick(
    config_path: str,
    token: str,
    chain: str,
    volume: Decimal,
    amount: Decimal,
    user_ids: tuple[str, ...],
    interval: float,
    verbose: bool,
    plain: bool,
) -> None:
    """One strategy from flags, run once in the foreground (same processes and safety as run).

    The exchange, paths and credentials come from the config file, which must exist; its
    strategies are ignored."""
    from config.loader import ConfigError, config_from_dict

    _fork_server_first()
    base = load_or_exit(config_path)
    data: dict = {
        "exchange": {
            "base_url": base.exchange.base_url,
            "ws_url": base.exchange.ws_url,
            "request_timeout_seconds": base.exchange.request_timeout_seconds,
        },
        "paths": {"data_dir": base.paths.data_dir, "runtime_dir": base.paths.runtime_dir},
        "logging": {"level": base.logging.level, "format": base.logging.format},
        "strategies": [
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
        ],
        "user_overrides": [  # each account keeps its route
            {"user_id": uid, "proxy": base.proxy_for(uid)}
            for uid in dict.fromkeys(user_ids)
            if base.proxy_for(uid)
        ],
    }
    try:
        config = config_from_dict(data, source=base.source, base_dir=Path(base.source).parent)
    except ConfigError as exc:  # the flags are the operator's: name them
        fail(
            "the flags make an invalid strategy: "
            + "; ".join(f"{i.path}: {i.message}" for i in exc.issues)
        )
    sys.exit(supervise(config, once=True, verbose=verbose, plain=plain))
