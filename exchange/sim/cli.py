"""`alphavol sim`: run the simulated exchange in the foreground.

Prints ``base_url=...`` and ``ws_url=...`` (flushed) so a parent process or a person can
put them in the config, then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import click
from aiohttp import web

from exchange.sim.app import STREAM_PATH, make_app
from exchange.sim.engine import SimEngine


async def serve(host: str, port: int, options: dict) -> None:
    await serve_app(make_app(SimEngine(**options)), host, port)


async def serve_app(
    app: web.Application, host: str, port: int, *, shutdown_timeout: float = 2.0
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, after printing its ``base_url=`` / ``ws_url=``
    lines (flushed) for whoever started the process."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    shown = host if host not in ("0.0.0.0", "::") else bound_host
    if ":" in shown:
        shown = f"[{shown}]"
    sys.stdout.write(f"base_url=http://{shown}:{bound_port}\n")
    sys.stdout.write(f"ws_url=ws://{shown}:{bound_port}{STREAM_PATH}\n")
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
