"""Prometheus metrics from the supervisor (``metrics: {listen: "127.0.0.1:9464"}``).

Off by default; prometheus-client is imported only when ``metrics.listen`` is set. The
endpoint is served on the supervisor's own event loop (aiohttp, ``GET /metrics``) through a
bounded ``supervisor.listener.Door`` (at most 32 connections, 5 s to send a request), and a
scrape reads the same memory as ``alphavol status`` (``books_today.BooksToday.status``:
the day's round trips, cost and points from the books) at that instant: no thread, no copy
to keep in step. A loopback address is the default; any other needs
``metrics.allow_remote`` (checked by the config) and is logged at warning.

Per user and strategy: volume, target, round trips and cost today, state; per user:
restarts, points today, the time of the last error; the supervisor: start time, uptime,
reloads, notifications sent/failed/dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from config.service_sections import is_loopback
from supervisor.listener import Door, DoorLimits, fd_reserve, new_app
from supervisor.states import State

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter

log = structlog.get_logger(__name__)

ROW_LABELS = ["user_id", "strategy_id", "token"]


class FleetCollector:
    """A prometheus-client collector over the arbiter's records."""

    def __init__(self, arb: Arbiter) -> None:
        self.arb = arb

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        arb = self.arb
        now = arb.mono()
        g: dict[str, Any] = {
            name: GaugeMetricFamily(f"alphavol_{name}", text, labels=ROW_LABELS)
            for name, text in (
                ("volume", "Volume today in the strategy's basis (status: current_volume)"),
                ("target_volume", "Target volume today in the strategy's basis"),
                ("round_trips_today", "Round trips done today"),
                ("cost_usdt_today", "What the round trips cost today, USDT"),
            )
        }
        state = GaugeMetricFamily(
            "alphavol_state",
            "1 for the state a user's strategy is in",
            labels=[*ROW_LABELS, "state"],
        )
        restarts = GaugeMetricFamily("alphavol_restarts", "Restarts today", labels=["user_id"])
        points = GaugeMetricFamily(
            "alphavol_points_today", "Volume points of today's volume so far", labels=["user_id"]
        )
        last_error = GaugeMetricFamily(
            "alphavol_last_error_timestamp_seconds",
            "When the user's last error or crash happened (epoch seconds)",
            labels=["user_id"],
        )
        obs = arb.observer
        for rec in list(arb.records.values()):
            uid = rec.user_id
            restarts.add_metric([uid], rec.restarts)
            if uid in obs.last_error_at:
                last_error.add_metric([uid], obs.last_error_at[uid])
            for i, row in enumerate(list(rec.rows.values())):
                u = obs.today.status(rec, row, now=now)
                if i == 0 and u.points_today is not None:
                    points.add_metric([uid], u.points_today)
                labels = [uid, u.strategy_id, row.settings.target_token]
                if u.current_volume is not None:
                    g["volume"].add_metric(labels, float(u.current_volume))
                g["target_volume"].add_metric(labels, float(u.target_volume))
                g["round_trips_today"].add_metric(labels, u.trades)
                g["cost_usdt_today"].add_metric(labels, float(u.cost_today))
                for s in State:
                    state.add_metric([*labels, s.value], 1.0 if u.state == s.value else 0.0)
        yield from g.values()
        yield from (state, restarts, points, last_error)
        yield GaugeMetricFamily(
            "alphavol_supervisor_start_time_seconds",
            "When the supervisor started (epoch seconds)",
            value=arb.started_at,
        )
        yield GaugeMetricFamily(
            "alphavol_supervisor_uptime_seconds",
            "Seconds since the supervisor started",
            value=max(0.0, arb.clock.time() - arb.started_at),
        )
        reloads = CounterMetricFamily(
            "alphavol_supervisor_reloads", "Config reloads", labels=["result"]
        )
        for result, n in obs.reloads.items():
            reloads.add_metric([result], n)
        yield reloads
        sent = CounterMetricFamily(
            "alphavol_notifications", "Notifications per outcome", labels=["result"]
        )
        box = obs.outbox
        for result, n in (("sent", box.sent), ("failed", box.failed), ("dropped", box.dropped)):
            sent.add_metric([result], n)
        yield sent


async def start_metrics(arb: Arbiter) -> None:
    """Serve ``/metrics`` at ``metrics.listen``; a port that cannot be bound (or any other
    failure) is logged at error and the supervisor goes on without metrics."""
    try:
        await _serve(arb)
    except Exception as exc:
        log.error("metrics_unavailable", listen=arb.config.metrics.listen, exc_info=exc)


METRICS_LIMITS = DoorLimits(max_connections=32, idle_seconds=5.0, body_bytes=16 * 1024)


async def _serve(arb: Arbiter) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from prometheus_client.registry import CollectorRegistry

    settings = arb.config.metrics
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(arb))

    async def metrics(_request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = new_app(METRICS_LIMITS)
    app.router.add_get("/metrics", metrics)
    door = Door(
        app,
        settings.host,
        settings.port,
        name="metrics",
        reserve=fd_reserve(arb.config.max_concurrent_users),
        limits=METRICS_LIMITS,
    )
    try:
        await door.start()
    except OSError as exc:
        log.error("metrics_unavailable", listen=settings.listen, error=exc.strerror or str(exc))
        return
    arb.metrics = door
    if not is_loopback(settings.host):
        log.warning("metrics_listening_remote", listen=settings.listen)
    log.info("metrics_listening", listen=settings.listen)
