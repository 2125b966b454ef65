"""Reload (SIGHUP without a terminal to lose, ``alphavol reload``): reread the config and
either refuse it, with every reason, changing nothing, or apply it.

The steps: read the file (a ``ConfigError`` lists every issue, one per line); refuse what
a running supervisor cannot take (``reload_plan.refusals``) and users without a stored
session; plan the changes (``reload_plan.plan_reload``, a pure function); apply the plan
to the users (``Fleet.apply_reload``) and check the volumes of the ones with new work.
A refusal is logged at error level with its reasons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from supervisor.errors import SupervisorError
from supervisor.reload_plan import plan_reload, refusals, settings_by_user

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter

log = structlog.get_logger(__name__)


def reload(arb: Arbiter) -> list[str] | None:
    """Returns why the new config was refused (the old one keeps running), or None."""
    arb.notifier.reloading()
    try:
        errors = _reload(arb)
    finally:
        arb.notifier.ready(arb.status_line())
    if errors:
        log.error("reload_refused", errors=errors)
    return errors


def _reload(arb: Arbiter) -> list[str] | None:
    if arb.stopping:
        return ["the supervisor is stopping"]
    loader = arb.config_loader
    if loader is None:
        from config.loader import load_config as loader
    try:
        new = loader(arb.config.source)
    except Exception as exc:  # ConfigError lists every issue, one per line
        return str(exc).splitlines() or [type(exc).__name__]
    only = getattr(arb.config, "only", None)  # `run --strategy` holds across reloads
    gone = [sid for sid in only or () if sid not in {s.strategy_id for s in new.strategies}]
    errors = refusals(arb.config, new) + [
        f"strategy {sid!r} (run --strategy) is no longer in the config" for sid in gone
    ]
    if errors:
        return errors
    if only:
        new = new.selecting(only)
    try:
        if arb.pool is None:  # a pool node reads a session when it claims the user
            arb.sessions.check(new)
    except SupervisorError as exc:
        return [str(exc)]
    plan = plan_reload(arb.fleet.settings_now(), settings_by_user(new))
    arb.config = new
    to_check = arb.fleet.apply_reload(plan)
    log.info(
        "config_reloaded",
        users=len(arb.fleet.records),
        added=list(plan.added),
        removed=plan.removed,
        changed=list(plan.changed),
    )
    if to_check:
        arb.tasks.start(arb.fleet.check(to_check), "volumes")
    arb.wake()
    return None
