"""Has the supervisor lost its terminal? (What SIGHUP means.)

Under systemd (or ``setsid``, ``nohup``) the supervisor has no controlling terminal to
lose, and SIGHUP means "reread the config". A foreground ``alphavol run`` started on a
terminal gets SIGHUP when that terminal is closed: the kernel has then taken the terminal
away from every process of the session, so ``/dev/tty`` no longer opens. That run must
drain its users and exit, not trade on headless; writes to the hung-up terminal fail with
EIO, so ``detach_stdio`` first points fds 0, 1 and 2 at /dev/null, and logging and the
final summary cannot crash it.
"""

from __future__ import annotations

import os
import signal


def controlling_terminal() -> bool:
    """True while this process has a controlling terminal it can open."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:  # ENXIO: no controlling terminal (any longer); EIO: hung up
        return False
    os.close(fd)
    return True


def detach_stdio() -> None:
    fd = os.open(os.devnull, os.O_RDWR)
    try:
        for target in (0, 1, 2):
            os.dup2(fd, target)
    finally:
        os.close(fd)


class Terminal:
    """Read once at start: was this a foreground run on a terminal?

    ``nohup`` (SIGHUP ignored when we started) says "keep running when the terminal goes":
    such a run is treated as headless, SIGHUP reloads."""

    def __init__(self) -> None:
        self.foreground = (
            signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN and controlling_terminal()
        )

    def hung_up(self) -> bool:
        """At SIGHUP: True when a foreground run's terminal is gone."""
        return self.foreground and not controlling_terminal()
