"""`alphavol status | stop | start | reload | shutdown`: talk to a running supervisor.

They need only its runtime directory (``config.runtime``): ``--runtime-dir`` or
``$ALPHAVOL_RUNTIME_DIR``, else ``paths.runtime_dir`` read leniently from the config, so a
config file being edited (even with a YAML syntax error) never locks the operator out.

Exit statuses: 0 done; 1 no supervisor answered, or it refused the request; 2 the config
file does not exist (and no runtime directory was given), or ``reload`` was refused
because of the config (the supervisor keeps the old one and names every problem).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from config.cli import config_option, missing_config
from config.output import EXIT_FAILED, EXIT_OPERATOR, fail, say
from config.runtime import RUNTIME_DIR_ENV, find_runtime_dir
from protocol import messages as m


def runtime_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--config`` and ``--runtime-dir``, resolved into one ``runtime: Path`` argument."""

    @config_option
    @click.option(
        "--runtime-dir",
        "runtime_dir",
        envvar=RUNTIME_DIR_ENV,
        type=click.Path(file_okay=False),
        help="The running supervisor's paths.runtime_dir (also $ALPHAVOL_RUNTIME_DIR);"
        " without it, read from the config, which may be half-edited.",
    )
    @functools.wraps(fn)
    def wrapper(config_path: str, runtime_dir: str | None, **kwargs: Any) -> Any:
        return fn(runtime=resolve_runtime(config_path, runtime_dir), **kwargs)

    return wrapper


def resolve_runtime(config_path: str, runtime_dir: str | None) -> Path:
    try:
        found = find_runtime_dir(config_path, runtime_dir)
    except FileNotFoundError:
        fail(missing_config(config_path) + f"; or give --runtime-dir (${RUNTIME_DIR_ENV})")
    if found.note:
        say(f"alphavol: note: {found.note}", err=True)
    return found.path


def ask(
    runtime: Path, req: m.Request, *, timeout: float = 2.0, refused: int = EXIT_FAILED
) -> m.Reply:
    """The supervisor's reply; exit 1 when none answers, ``refused`` on an ErrorReply."""
    from supervisor.client import ControlClient, SupervisorNotRunning

    try:
        reply = ControlClient(runtime).request(req, timeout=timeout)
    except SupervisorNotRunning as exc:
        fail(str(exc), EXIT_FAILED)
    if isinstance(reply, m.ErrorReply):
        fail(reply.message, refused)
    return reply


def _done(reply: m.Reply) -> None:
    say(getattr(reply, "message", "") or "ok")


@click.command("status")
@runtime_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--watch", is_flag=True, help="Refresh in place every second (Ctrl+C ends).")
def status(runtime: Path, as_json: bool, watch: bool) -> None:
    """Per strategy and user: state, pid, restarts, volume, batch, cost, last error, ETA."""
    from supervisor import render

    if watch and not as_json:
        from supervisor.liveview import watch_status

        sys.exit(watch_status(runtime))
    reply = ask(runtime, m.StatusRequest())
    assert isinstance(reply, m.StatusReply)
    if as_json:
        render.print_json(reply)
    else:
        render.print_text(reply)


@click.command("stop")
@runtime_option
@click.argument("strategy", required=False)
@click.option("--user", "user_id", help="Only this user.")
@click.option("--now", is_flag=True, help="Cancel and sell at once instead of draining.")
def stop(runtime: Path, strategy: str | None, user_id: str | None, now: bool) -> None:
    """Stop users (all, a strategy's, or one): drain by default."""
    _done(ask(runtime, m.StopRequest(strategy_id=strategy, user_id=user_id, now=now)))


@click.command("start")
@runtime_option
@click.argument("strategy", required=False)
@click.option("--user", "user_id", help="Only this user.")
def start(runtime: Path, strategy: str | None, user_id: str | None) -> None:
    """Queue stopped, finished or FATAL users again."""
    _done(ask(runtime, m.StartRequest(strategy_id=strategy, user_id=user_id)))


@click.command("reload")
@runtime_option
def reload(runtime: Path) -> None:
    """Reread the config file (a broken one is refused, exit 2, and the old one kept)."""
    # the supervisor answers within two rereads: a request that arrives while one is under
    # way waits for it and then shares the next (the file may have changed since)
    from config.reader import READ_DEADLINE

    _done(ask(runtime, m.ReloadRequest(), timeout=2 * READ_DEADLINE + 5, refused=EXIT_OPERATOR))


@click.command("shutdown")
@runtime_option
@click.option("--now", is_flag=True, help="Stop users at once instead of draining.")
def shutdown(runtime: Path, now: bool) -> None:
    """Stop every user and exit the supervisor."""
    _done(ask(runtime, m.ShutdownRequest(now=now)))


COMMANDS = (status, stop, start, reload, shutdown)
