"""``run_supervisor``: the supervisor as a function, for ``alphavol run``/``quick``, tests
and benchmarks."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import structlog

from protocol.exitcodes import SupervisorExit
from supervisor.arbiter import Arbiter
from supervisor.errors import SupervisorError

log = structlog.get_logger(__name__)


def run_supervisor(config: Any, *, once: bool = False, **kwargs: Any) -> int:
    """Run the supervisor in this process until it is done or stopped; returns its exit
    status (``protocol.exitcodes.SupervisorExit``): 0 stopped on request or (``once``)
    every user reached its target or was skipped; 1 (``once``) some user ended FATAL, with
    leftovers or short of its target; 2 a startup problem (credentials, another supervisor
    running); 70 a task of the supervisor failed (users drained, traceback logged)."""
    from supervisor.spawn import start_fork_server
    from supervisor.template import set_title

    set_title("alphavol: supervisor")
    try:
        if kwargs.get("spawner") is None:
            start_fork_server()  # forked now if this process has one thread (see spawn)
        return asyncio.run(Arbiter(config, once=once, **kwargs).run())
    except SupervisorError as exc:
        print(f"alphavol: {exc}", file=sys.stderr)
        return SupervisorExit.OPERATOR
    except Exception as exc:  # a bug before the loop ran: loudly, and systemd restarts us
        log.error("supervisor_failed", exc_info=exc)
        return SupervisorExit.INTERNAL
