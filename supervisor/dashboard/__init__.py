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
    from supervisor.listener import Door

log = structlog.get_logger(__name__)


DASHBOARD_LIMITS_CONNECTIONS = 64  # a phone and a few desktops polling every 2 s, with room


async def serve(app: web.Application, host: str, port: int, *, reserve: int) -> Door:
    """Serve ``app`` at ``host:port`` through a bounded door (connection limit, idle and
    header timeouts, body limit, descriptors kept back for ZeroMQ and the control socket:
    ``supervisor.listener``); the door, for ``close`` at exit."""
    from supervisor.dashboard.app import MAX_BODY
    from supervisor.listener import Door, DoorLimits

    limits = DoorLimits(
        max_connections=DASHBOARD_LIMITS_CONNECTIONS, idle_seconds=10.0, body_bytes=MAX_BODY
    )
    door = Door(app, host, port, name="dashboard", reserve=reserve, limits=limits)
    await door.start()
    return door


async def start_dashboard(arb: Arbiter) -> None:
    """Serve the dashboard at ``dashboard.listen``; a port that cannot be bound is logged
    at error and the supervisor goes on without it (the users trade regardless)."""
    from config.service_sections import is_loopback
    from supervisor.dashboard.app import Dashboard
    from supervisor.listener import fd_reserve

    settings = arb.config.dashboard
    try:
        app = Dashboard(arb, arb.dashboard_token).app()
        arb.dashboard = await serve(
            app, settings.host, settings.port, reserve=fd_reserve(arb.config.max_concurrent_users)
        )
    except OSError as exc:
        log.error("dashboard_unavailable", listen=settings.listen, error=exc.strerror or str(exc))
        return
    if not is_loopback(settings.host):
        log.warning("dashboard_listening_remote", listen=settings.listen)
    log.info("dashboard_listening", listen=settings.listen)
