"""Imported once by the fork server, before any user process is forked from it.

Every user process is a fork of that template, so the code (aiohttp, msgspec, zmq, our
modules) is imported once and its memory stays shared. As the ``gc`` docs advise: the
collector is off while importing (no freed holes that children would fill, copying the
page), ``gc.freeze()`` afterwards keeps the children's collections away from the template's
objects, and each child turns collection back on. A child imports nothing the template has
not imported (checked by comparing ``sys.modules``), so modules are never private copies.

Only the supervisor receives terminal and service signals. Imported by the fork server
(``FORKSERVER_ENV`` set), the template moves the fork server into a session of its own
(``os.setsid``): it and every user process forked from it have no controlling terminal, so
a Ctrl+C, Ctrl+\\, Ctrl+Z or a closed terminal reaches the supervisor alone, which turns
them into Drain/StopNow for its children. (Ignoring the signals in the children alone
would leave the fork server in the terminal's process group, and a closed terminal would
kill it and, through the parent-death signal, stop every child at once.)

``run_child`` is the function a forked child runs: first it lowers its own CPU priority
(``os.nice(increment)``, ``ALPHAVOL_CHILD_NICE``, read by ``supervisor.spawn.Spawner``), so
the supervisor, with its control socket and heartbeats, gets the CPU before hundreds of
busy children; then it ignores the terminal's signals as well (should one be sent to the
group by hand) and calls the real entry point.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sys
from typing import Any

import setproctitle

FORKSERVER_ENV = "ALPHAVOL_FORKSERVER"  # set by supervisor.spawn for the fork server only
MAIN_PATH_ENV = "ALPHAVOL_FORKSERVER_MAIN"
TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGHUP)
PRELOAD = (
    "userproc.main",
    "exchange.client",
    "exchange.stream",
    "aiohttp",
    "aiohttp_socks",
    "zmq.asyncio",
)


def set_title(title: str) -> None:
    """What ``ps`` and ``/proc/PID/cmdline`` show for this process (``alphavol: ...``)."""
    try:
        setproctitle.setproctitle(title)
    except Exception:  # cosmetic: never stop a process for it
        pass


def user_title(spec: Any) -> str:
    """``alphavol: user 1 koge aop``: the user and its strategies."""
    ids = " ".join(getattr(s, "strategy_id", "?") for s in getattr(spec, "settings", ()))
    return f"alphavol: user {getattr(spec, 'user_id', '?')} {ids}".rstrip()


def _become_template() -> None:
    """In the fork server only (the supervisor imports this module for ``run_child``)."""
    set_title("alphavol: fork server")
    try:  # leave the terminal: its signals must reach the supervisor alone
        os.setsid()
    except OSError:  # already a session leader
        pass
    for sig in TERMINAL_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    gc.disable()  # no collections while importing: they would leave freed holes in the pages
    # The supervisor usually runs as a console script (``.venv/bin/alphavol``).
    # multiprocessing re-runs the parent's main script in every child (as ``__mp_main__``)
    # unless ``__main__`` already is that file: that imported the whole CLI (click, yaml,
    # cryptography, the sim, the demo) into each user process, privately (about 11 MiB
    # each). Children need nothing from it (``run_child`` and the spec are importable by
    # name), so say ``__main__`` is that file. ``supervisor.spawn.ensure_fork_server``
    # passes its path.
    main_path = os.environ.pop(MAIN_PATH_ENV, None)
    if main_path and getattr(sys.modules["__main__"], "__file__", None) is None:
        sys.modules["__main__"].__file__ = main_path
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # a missing optional piece shows up when the child runs it
            pass
    gc.freeze()


if os.environ.pop(FORKSERVER_ENV, None):
    _become_template()


def resolve(ref: str) -> Any:
    """``"package.module:function"`` -> the function."""
    mod, _, attr = ref.partition(":")
    return getattr(importlib.import_module(mod), attr or "child_main")


def run_child(target_ref: str, spec: Any, nice: int = 0) -> None:
    set_title(user_title(spec))
    if nice:
        try:
            os.nice(nice)
        except OSError:  # a negative increment without CAP_SYS_NICE: keep the inherited one
            pass
    for sig in TERMINAL_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    gc.enable()
    target = resolve(target_ref)
    rc = target(spec)
    sys.exit(rc if isinstance(rc, int) else 0)
