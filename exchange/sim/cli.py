"""`alphavol sim`: run the simulated exchange in the foreground.

Prints ``base_url=...`` and ``ws_url=...`` first (flushed, for a parent process), then for
a person: the tokens and accounts it serves and the ``exchange:`` lines to paste into a
config; then serves until SIGINT/SIGTERM. A port already in use is one line and exit 2.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from errno import EADDRINUSE

import click
from aiohttp import web

from config.output import fail
from exchange.sim.app import STREAM_PATH, make_app
from exchange.sim.engine import SimEngine


def banner(engine: SimEngine, base_url: str, ws_url: str) -> str:
    """What the sim serves, and the lines to paste into a config."""
    tokens = "".join(
        f"  {t.symbol:<8} {t.alpha_id:<10} {t.chain_name:<9} mulPoint {engine.mul_point(t)}\n"
        for t in engine.tokens.values()
    )
    funded = sorted(engine._initial_accounts)  # the scenario's accounts
    return (
        f"alphavol sim serves these tokens:\n{tokens}"
        f"and every account a session's p20t cookie names (new: {engine.starting_usdt} USDT)"
        + (f";\npre-funded: {', '.join(funded)}" if funded else "")
        + ";\na session's csrftoken header must be the MD5 of its cr00 cookie, as on Binance.\n"
        "Paste into the config:\n"
        "exchange:\n"
        f"  base_url: {base_url}\n"
        f"  ws_url: {ws_url}\n"
    )


async def serve(host: str, port: int, options: dict) -> None:
    engine = SimEngine(**options)
    await serve_app(make_app(engine), host, port, banner=lambda base, ws: banner(engine, base, ws))


async def serve_app(
    app: web.Application,
    host: str,
    port: int,
    *,
    shutdown_timeout: float = 2.0,
    banner: Callable[[str, str], str] | None = None,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, after printing its ``base_url=`` / ``ws_url=``
    lines (flushed) for whoever started the process, then ``banner(base_url, ws_url)``
    for a person. A port in use is one line and exit 2."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == EADDRINUSE:
            fail(f"port {port} on {host} is already in use; choose another --port (0: any free)")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    bound_host, bound_port = runner.addresses[0][:2]
    shown = host if host not in ("0.0.0.0", "::") else bound_host
    if ":" in shown:
        shown = f"[{shown}]"
    base_url = f"http://{shown}:{bound_port}"
    ws_url = f"ws://{shown}:{bound_port}{STREAM_PATH}"
    sys.stdout.write(f"base_url={base_url}\nws_url={ws_url}\n")
    if banner is not None:
        sys.stdout.write(banner(base_url, ws_url))
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


@click.command("sim")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int, help="0 picks a free port")
@click.option("--seed", default=None, type=int, help="random seed (prices, faults)")
@click.option(
    "--fill-delay", default=None, type=float, help="seconds before a marketable order fills"
)
@click.option(
    "--volume-lag", default=None, type=float, help="seconds before a fill shows in user-volume"
)
@click.option(
    "--starting-usdt", default=None, type=str, help="USDT of a new account (default 10000)"
)
@click.option("--scenario", default=None, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--counting",
    default=None,
    type=click.Choice(["buy_mul", "buy_nomul", "both_mul"]),
    help="how user-volume counts fills",
)
@click.option("--volatility", default=None, type=str, help="override every token's volatility")
@click.option(
    "--spread",
    default=None,
    type=str,
    help="override every token's bid/ask spread, a fraction of the price (0.0004 = 4 bp)",
)
@click.option("--listen-key-ttl", default=None, type=float, help="seconds a listen key lives")
def sim(
    host,
    port,
    seed,
    fill_delay,
    volume_lag,
    starting_usdt,
    scenario,
    counting,
    volatility,
    spread,
    listen_key_ttl,
) -> None:
    """Run the simulated Binance Alpha exchange in the foreground."""
    options = {
        "seed": seed,
        "fill_delay": fill_delay,
        "volume_lag": volume_lag,
        "starting_usdt": starting_usdt,
        "scenario": scenario,
        "counting": counting,
        "volatility": volatility,
        "spread": spread,
        "listen_key_ttl": listen_key_ttl,
    }
    asyncio.run(serve(host, port, {k: v for k, v in options.items() if v is not None}))


if __name__ == "__main__":
    sim()
