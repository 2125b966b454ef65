"""Prometheus metrics from the supervisor (``metrics: {listen: "127.0.0.1:9464"}``).

Off by default; prometheus-client is imported only when ``metrics.listen`` is set. The
endpoint is served on the supervisor's own event loop (aiohttp, ``GET /metrics``) through a
bounded ``supervisor.listener.Door`` (at most 32 connections, 5 s to send a request), and a
scrape reads the rows ``alphavol status`` shows (``commands.status.status_reply``: the day's
round trips, cost and points from the books; on a node of a pool, every user of the pool)
at that instant: no thread, no copy to keep in step. A loopback address is the default; any other needs
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
from protocol import messages as m
from supervisor.commands.status import status_reply
from supervisor.listener import Door, DoorLimits, fd_reserve, new_app
from supervisor.states import State

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter
    from supervisor.pool.node import Pool

log = structlog.get_logger(__name__)

ROW_LABELS = ["user_id", "strategy_id", "token"]


class FleetCollector:
    """A prometheus-client collector over the rows ``alphavol status`` shows.

    A node of a pool (``store:``, issue 22) shows every user of the pool, as status does:
    its own rows live, the other nodes' as of their last heartbeat (what the pool loop
    read at its last tick, in memory: a scrape never waits on PostgreSQL); every series
    gains a ``node`` label (the node that runs or ran the user, "" for one no node has
    claimed; the supervisor's own series: this node), and per node of the pool
    ``alphavol_pool_node_*``. Without ``store:`` the labels are as they always were."""

    def __init__(self, arb: Arbiter) -> None:
        self.arb = arb

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        arb = self.arb
        pool = arb.pool
        here = [pool.node] if pool is not None else []
        node = ["node"] if pool is not None else []
        rows, per_user = [*ROW_LABELS, *node], ["user_id", *node]
        g: dict[str, Any] = {
            name: GaugeMetricFamily(f"alphavol_{name}", text, labels=rows)
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
            labels=[*rows, "state"],
        )
        restarts = GaugeMetricFamily("alphavol_restarts", "Restarts today", labels=per_user)
        points = GaugeMetricFamily(
            "alphavol_points_today", "Volume points of today's volume so far", labels=per_user
        )
        last_error = GaugeMetricFamily(
            "alphavol_last_error_timestamp_seconds",
            "When the user's last error or crash happened (epoch seconds)",
            labels=per_user,
        )
        obs = arb.observer
        reply = status_reply(arb)
        users: set[str] = set()
        for st in reply.strategies:
            for u in st.users:
                uid = u.user_id
                at = [u.node or ""] if pool is not None else []
                if uid not in users:  # the user's figures: the same on each of its rows
                    users.add(uid)
                    restarts.add_metric([uid, *at], u.restarts)
                    if u.points_today is not None:
                        points.add_metric([uid, *at], u.points_today)
                    if uid in obs.last_error_at and at == here:  # known where it runs
                        last_error.add_metric([uid, *at], obs.last_error_at[uid])
                labels = [uid, u.strategy_id, st.token, *at]
                if u.current_volume is not None:
                    g["volume"].add_metric(labels, float(u.current_volume))
                g["target_volume"].add_metric(labels, float(u.target_volume))
                g["round_trips_today"].add_metric(labels, u.trades)
                g["cost_usdt_today"].add_metric(labels, float(u.cost_today))
                for s in State:
                    state.add_metric([*labels, s.value], 1.0 if u.state == s.value else 0.0)
        yield from g.values()
        yield from (state, restarts, points, last_error)
        if pool is not None:
            yield from pool_families(pool, reply)
        for name, text, value in (
            ("start_time", "When the supervisor started (epoch seconds)", arb.started_at),
            (
                "uptime",
                "Seconds since the supervisor started",
                max(0.0, arb.clock.time() - arb.started_at),
            ),
        ):
            family = GaugeMetricFamily(f"alphavol_supervisor_{name}_seconds", text, labels=node)
            family.add_metric(here, value)
            yield family
        reloads = CounterMetricFamily(
            "alphavol_supervisor_reloads", "Config reloads", labels=["result", *node]
        )
        for result, n in obs.reloads.items():
            reloads.add_metric([result, *here], n)
        yield reloads
        sent = CounterMetricFamily(
            "alphavol_notifications", "Notifications per outcome", labels=["result", *node]
        )
        box = obs.outbox
        for result, n in (("sent", box.sent), ("failed", box.failed), ("dropped", box.dropped)):
            sent.add_metric([result, *here], n)
        yield sent


def pool_families(pool: Pool, reply: m.StatusReply) -> Any:
    """Per node of the pool, as ``status`` shows it (the store as of the last tick)."""
    from prometheus_client.core import GaugeMetricFamily

    up = GaugeMetricFamily(
        "alphavol_pool_node_up", "1: the node heartbeat within a lease", labels=["node"]
    )
    age = GaugeMetricFamily(
        "alphavol_pool_node_heartbeat_age_seconds",
        "Seconds since the node's last heartbeat (as of this node's last tick)",
        labels=["node"],
    )
    users = GaugeMetricFamily(
        "alphavol_pool_node_users", "Users whose process runs on the node", labels=["node"]
    )
    leases = GaugeMetricFamily(
        "alphavol_pool_node_leases", "Leases the node holds (0: not heartbeating)", labels=["node"]
    )
    for n in reply.nodes:
        up.add_metric([n.node], 1.0 if n.alive else 0.0)
        age.add_metric([n.node], n.heartbeat_age_seconds)
        users.add_metric([n.node], n.users)
        leases.add_metric([n.node], pool.held_by.get(n.node, 0) if n.alive else 0)
    reachable = GaugeMetricFamily(
        "alphavol_pool_store_up",
        "1: this node's last transaction with the store succeeded",
        labels=["node"],
    )
    reachable.add_metric([pool.node], 0.0 if pool.problem else 1.0)
    yield from (up, age, users, leases, reachable)


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
        await arb.observer.today.current()  # the figures of every change noted so far
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
