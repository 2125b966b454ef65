"""The web dashboard (issue 23): every user at a glance, and the daily chores done from a
browser or a script, served by the supervisor on its own event loop.

Off unless ``dashboard.listen`` is set. ``supervisor.dashboard.app`` holds the routes and
checks, ``auth`` the token, sessions and CSRF, ``views`` what the API answers, ``actions``
what it does (through ``supervisor.commands``, as the CLI), ``static/`` the page, its
script and style (package data: no CDN, it works with no internet).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from aiohttp import web

    from supervisor.arbiter import Arbiter

log = structlog.get_logger(__name__)


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` at ``host:port``; the runner, for ``cleanup`` at exit."""
    from aiohttp import web

    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def start_dashboard(arb: Arbiter) -> None:
    """Serve the dashboard at ``dashboard.listen``; a port that cannot be bound is logged
    at error and the supervisor goes on without it (the users trade regardless)."""
    from config.service_sections import is_loopback
    from supervisor.dashboard.app import Dashboard

    settings = arb.config.dashboard
    try:
        app = Dashboard(arb, arb.dashboard_token).app()
        arb.dashboard = await serve(app, settings.host, settings.port)
    except OSError as exc:
        log.error("dashboard_unavailable", listen=settings.listen, error=exc.strerror or str(exc))
        return
    if not is_loopback(settings.host):
        log.warning("dashboard_listening_remote", listen=settings.listen)
    log.info("dashboard_listening", listen=settings.listen)
