"""The live progress view: ``alphavol status --watch``, and ``alphavol run`` on a terminal.

A thread polls the supervisor's control socket (``StatusRequest``, as ``status`` does)
and redraws the status tables in place with rich's ``Live`` (one frame per reading).
Lines printed meanwhile (warnings and errors from the log, the exit summary) appear above
the view. Everything goes through ``config.output`` and so through the redactor.

``run_with_view`` is what a foreground ``alphavol run`` on a terminal does: the
supervisor in this process, its log lines above the view at WARNING and above (every
INFO line with ``-v``), the view fed by polling its own control socket from a thread.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, cast

from config.output import EXIT_FAILED, EXIT_OK, console
from config.richguard import allow_rich
from protocol import messages as m
from supervisor.tables import status_view

allow_rich()
from rich.live import Live  # noqa: E402
from rich.text import Text  # noqa: E402

POLL_SECONDS = 1.0


class LiveStatus:
    """A rich Live view of the supervisor's status, fed from a polling thread (or, with
    ``runtime=None``, by the caller through ``show``). ``err``: draw on stderr."""

    def __init__(
        self,
        runtime: str | Path | None,
        *,
        interval: float = POLL_SECONDS,
        err: bool = False,
        transient: bool = False,
    ) -> None:
        self.runtime = None if runtime is None else Path(runtime)
        self.interval = interval
        self.console = console(err=err)
        self.live = Live(
            Text("waiting for the supervisor ..."),
            console=self.console,
            auto_refresh=False,  # one frame per status reading
            transient=transient,  # cleared at the end (run: its exit summary says it all)
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.stopped = threading.Event()
        self.answered = threading.Event()  # the supervisor answered at least once
        self.lost = threading.Event()  # ... and then stopped answering
        self._thread = threading.Thread(target=self._poll, name="liveview", daemon=True)

    def __enter__(self) -> LiveStatus:
        self.live.start(refresh=True)
        if self.runtime is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopped.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.live.stop()

    def show(self, reply: m.StatusReply) -> None:
        """Draw this status reading (one frame)."""
        self.answered.set()
        self.live.update(status_view(reply), refresh=True)

    def print_above(self, text: str) -> None:
        """A line above the view (the view is redrawn below it)."""
        self.console.print(Text(text.rstrip("\n")))

    def _poll(self) -> None:
        from supervisor.client import ControlClient, SupervisorNotRunning

        assert self.runtime is not None
        client = ControlClient(self.runtime)
        while not self.stopped.is_set():
            try:
                reply = client.request(m.StatusRequest(), timeout=max(1.0, self.interval))
            except SupervisorNotRunning:
                if self.answered.is_set():
                    self.lost.set()  # the last reading stays on screen
            else:
                if isinstance(reply, m.StatusReply):
                    self.show(reply)
            self.stopped.wait(self.interval)


def watch_status(runtime: Path, *, interval: float = POLL_SECONDS) -> int:
    """``alphavol status --watch``: until Ctrl+C (0) or the supervisor is gone (1)."""
    from config.output import fail
    from supervisor.client import ControlClient, SupervisorNotRunning

    try:
        ControlClient(runtime).request(m.StatusRequest(), timeout=2.0)
    except SupervisorNotRunning as exc:
        fail(str(exc), EXIT_FAILED)
    try:
        with LiveStatus(runtime, interval=interval) as view:
            while not view.lost.wait(0.2):
                pass
            view.print_above("the supervisor stopped answering")
            return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK


class _LinesAbove(io.TextIOBase):
    """A text stream that prints each complete line above the live view."""

    def __init__(self, view: LiveStatus) -> None:
        self._view = view
        self._buf = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._buf += text
            *lines, self._buf = self._buf.split("\n")
        for line in lines:
            self._view.print_above(line)
        return len(text)

    def flush(self) -> None:
        """Print a last, unfinished line too."""
        with self._lock:
            rest, self._buf = self._buf, ""
        if rest:
            self._view.print_above(rest)

    def isatty(self) -> bool:
        return False


def run_with_view(
    config: Any, *, once: bool, verbose: bool, prepare: Callable[[], dict[str, Any]]
) -> int:
    """The supervisor in this process under the live view (see the module docstring).
    ``prepare()`` runs once the log goes above the view; it returns more arguments of
    ``run_supervisor`` (the opened credentials store)."""
    import msgspec

    from config.logsetup import configure_logging
    from supervisor.service import run_supervisor

    shown = config.logging.level if verbose else _at_least(config.logging.level, "WARNING")
    # user processes write to the same terminal: only what matters, unless -v
    config = msgspec.structs.replace(
        config, logging=msgspec.structs.replace(config.logging, level=shown)
    )
    with LiveStatus(config.paths.runtime_dir, transient=True) as view:
        lines = _LinesAbove(view)
        configure_logging(shown, "console", stream=cast(TextIO, lines))
        try:
            with contextlib.redirect_stdout(lines), contextlib.redirect_stderr(lines):
                return run_supervisor(config, once=once, out=lines, **prepare())
        finally:
            lines.flush()


def _at_least(level: str, floor: str) -> str:
    have = logging.getLevelName(str(level).upper())
    want = logging.getLevelName(floor)
    return floor if not isinstance(have, int) or have < want else str(level).upper()
