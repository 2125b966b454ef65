"""What every user process is made of, and how it starts.

``preload()`` imports everything a user process needs (``PRELOAD``) into the supervisor
before it starts a thread, then ``gc.freeze()``s: the fork server (``supervisor.
forkserver``) is forked from that state, and every user process from the fork server, so
those modules' pages are shared copy-on-write by all of them, and the collector of a user
process never walks (and so never copies) them. A child imports nothing the template has
not imported (checked by comparing ``sys.modules``), so modules are never private copies.

``run_child`` is the function a forked child runs: it names itself for ``ps``, lowers its
own CPU priority (``os.nice(increment)``, ``ALPHAVOL_CHILD_NICE``, read by
``supervisor.spawn.Spawner``) so the supervisor, with its control socket and heartbeats,
gets the CPU before hundreds of busy children, ignores the terminal's signals (its session
has no terminal anyway: the fork server called ``setsid``; only the supervisor decides
how children stop) and calls the real entry point.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sys
from typing import Any

import msgspec
import setproctitle

TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGHUP)
PRELOAD = (
    "userproc.main",
    "exchange.client",
    "exchange.stream",
    "aiohttp",
    "aiohttp_socks",
    "zmq.asyncio",
)
# Modules whose msgspec Structs a user process decodes (its spec, replies, settings, the
# wire protocol): their type information is built here, once, instead of in every child.
WARM = (
    "userproc.spec",
    "userproc.tuning",
    "config.settings",
    "exchange.models",
    "exchange.market_models",
    "protocol.messages",
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


def preload() -> None:
    """Import what user processes need, then freeze the collector's view of it. Called in
    the supervisor before it forks the fork server (and by a fork server started on its
    own)."""
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # a missing optional piece shows up when the child runs it
            pass
    warm_types()
    gc.freeze()


def warm_types() -> None:
    """Build msgspec's type information of every Struct in ``WARM`` and the number-check
    plan of every reply model now. msgspec builds them lazily, on a type's first decode,
    and caches them on the class: in a child that is CPU spent at every start (evaluating
    the string annotations of ``from __future__ import annotations`` modules) and pages
    private to that child. Built in the template they are shared by every user process."""
    from exchange.untrusted import plan

    for name in WARM:
        mod = sys.modules.get(name)
        for obj in list(vars(mod).values()) if mod is not None else ():
            if not (isinstance(obj, type) and issubclass(obj, msgspec.Struct)):
                continue
            if obj.__module__ != name:
                continue
            try:
                msgspec.json.Decoder(obj)
                if name.startswith("exchange."):
                    plan(obj)
            except Exception:  # a type that cannot be built fails where the child uses it
                pass


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
