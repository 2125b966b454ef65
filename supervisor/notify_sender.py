"""The process that sends one channel's notifications with Apprise
(``python -m supervisor.notify_sender``; started by ``supervisor.notify_channel``).

Apprise is synchronous: a channel that answers ``200`` and then drips its body one byte at
a time defeats every socket timeout, and a hanging name lookup cannot be interrupted at
all. So each channel sends from a process of its own, which its parent kills when an
attempt passes its deadline: nothing abandoned can pile up, and no channel can hold up
another, the supervisor's loop or its exit.

Protocol, one JSON object per line: the parent writes ``{"url", "timeout"}`` (on stdin,
never on the command line: the URL holds a token), the sender answers ``{"ready": bool,
"error"}`` once Apprise is loaded; then for each ``{"title", "body"}`` it answers
``{"ok": bool, "error"}`` (the error is Apprise's own last warning; the parent masks the
URL's secrets in it). It ends when stdin closes. It ignores SIGINT (the supervisor decides
when it stops) and writes nothing else: Apprise's log goes nowhere. Loading Apprise and
each attempt are bounded by ``signal.alarm`` as well, so a sender handed the last messages
at the supervisor's exit (``Channel.close(hand_over=True)``) ends by itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import sys
from typing import Any, TextIO


def apprise_for(url: str, timeout: float) -> Any:
    """An ``apprise.Apprise`` with only ``url``, sending inline in this thread with
    ``timeout`` on each socket operation; None when Apprise does not understand the URL."""
    import apprise

    from config.service_sections import apprise_plugin

    # Sends run inline: with async_mode or a service_timeout (Apprise 2) Apprise would send
    # from a pool of its own threads.
    try:
        asset = apprise.AppriseAsset(async_mode=False, service_timeout=0)
    except TypeError:  # Apprise 1.x has no service_timeout (and always sends inline)
        asset = apprise.AppriseAsset(async_mode=False)
    plugin = apprise_plugin(url, asset)
    if not plugin:
        return None
    for attr in ("socket_connect_timeout", "socket_read_timeout"):
        if hasattr(plugin, attr):
            setattr(plugin, attr, timeout)
    ap = apprise.Apprise(asset=asset)
    ap.add(plugin)
    return ap


class _LastWarning(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.text: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.text = record.getMessage()[:300]


def _answer(out: TextIO, **doc: Any) -> None:
    with contextlib.suppress(BrokenPipeError):  # after a hand-over nobody reads answers
        out.write(json.dumps(doc) + "\n")
        out.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "w")  # answers only; anything else printed goes to stderr
    os.dup2(2, 1)
    first = sys.stdin.readline()
    if not first:
        return
    setup = json.loads(first)
    timeout = float(setup["timeout"])
    # Each phase is bounded here too (SIGALRM ends the process): after a hand-over at
    # the supervisor's exit, nobody else is left to kill a sender whose channel drips.
    signal.alarm(math.ceil(float(setup.get("startup", 30))))
    last = _LastWarning()
    logging.getLogger("apprise").addHandler(last)
    try:
        ap = apprise_for(setup["url"], timeout)
    except Exception as exc:
        _answer(out, ready=False, error=f"Apprise could not be loaded: {type(exc).__name__}")
        return
    if ap is None:
        _answer(out, ready=False, error="Apprise does not understand this URL")
        return
    _answer(out, ready=True, error=None)
    signal.alarm(0)
    for line in sys.stdin:
        msg = json.loads(line)
        last.text = None
        signal.alarm(math.ceil(timeout) + 1)
        try:
            ok = bool(ap.notify(title=msg["title"], body=msg["body"]))
            error = None if ok else (last.text or "the channel refused or did not answer")
        except Exception as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"[:300]
        signal.alarm(0)
        _answer(out, ok=ok, error=error)


if __name__ == "__main__":
    main()
