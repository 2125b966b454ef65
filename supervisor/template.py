"""Imported once by the fork server, before any user process is forked from it.

Every user process is a fork of that template, so the code (aiohttp, msgspec, zmq, our
modules) is imported once and its memory stays shared; ``gc.freeze()`` keeps the garbage
collector from touching (and so copying) those pages in the children.

``run_child`` is the function a forked child runs: it ignores SIGINT (a Ctrl-C in the
terminal reaches the whole process group; only the supervisor decides how children stop,
by Drain/StopNow) and then calls the real entry point.
"""

from __future__ import annotations

import gc
import importlib
import signal
import sys
from typing import Any

PRELOAD = ("userproc.main", "exchange.client", "exchange.stream", "aiohttp", "zmq.asyncio")

for _name in PRELOAD:
    try:
        importlib.import_module(_name)
    except ImportError:  # a missing optional piece shows up when the child runs it
        pass
gc.freeze()


def resolve(ref: str) -> Any:
    """``"package.module:function"`` -> the function."""
    mod, _, attr = ref.partition(":")
    return getattr(importlib.import_module(mod), attr or "child_main")


def run_child(target_ref: str, spec: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    target = resolve(target_ref)
    rc = target(spec)
    sys.exit(rc if isinstance(rc, int) else 0)
