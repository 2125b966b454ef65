"""The config file, checked before it is read and read with a bound.

Whoever reads the config (``run``, ``check``, the control commands, a reload by
``alphavol reload`` or SIGHUP) reads it through ``read_source``: it must be a regular
file (a FIFO, a device or a directory is refused at once, without an open that could
wait for a writer) of at most ``MAX_CONFIG_BYTES``; larger is refused before a byte is
parsed. ``check_source`` is the same check without reading, for a caller that must
answer at once (the supervisor, before it hands the file to its reader process).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from config.errors import ConfigError, ConfigIssue

MAX_CONFIG_BYTES = 1 << 20  # 1 MiB: a config of hundreds of strategies is a few dozen KB

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def refused(shown: str, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(file=shown, path="", line=None, message=message)])


def _problem(st: os.stat_result) -> str | None:
    """Why a file with this ``stat`` is not read as a config, or None."""
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        return f"is {kind}, not a regular file; a config must be a plain file"
    if st.st_size > MAX_CONFIG_BYTES:
        return (
            f"is {st.st_size:,} bytes, more than the {MAX_CONFIG_BYTES:,} a config may have;"
            " nothing of it was read"
        )
    return None


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_source(path: str | Path, shown: str | None = None) -> None:
    """Raises ``ConfigError`` (one issue) unless ``path`` is a regular file of at most
    ``MAX_CONFIG_BYTES``. Never opens the file: answers at once whatever it is."""
    shown = str(path) if shown is None else shown
    try:
        st = os.stat(os.path.expanduser(str(path)))
    except OSError as exc:
        raise refused(shown, f"cannot read: {_reason(exc)}") from None
    problem = _problem(st)
    if problem:
        raise refused(shown, problem)


def read_source(path: str | Path, shown: str | None = None, *, lenient: bool = False) -> str:
    """The text of the config file, checked as ``check_source`` says; ``ConfigError``
    (one issue) when it is not a regular file, too large, unreadable or not UTF-8.
    ``lenient`` (a control command looking for ``paths.runtime_dir`` only): a file too
    large gives its first ``MAX_CONFIG_BYTES``, bytes that are not UTF-8 are replaced.

    Opened without blocking (a file swapped for a FIFO after the check cannot make the
    open wait for a writer) and checked again on the open descriptor."""
    shown = str(path) if shown is None else shown
    if not lenient:
        check_source(path, shown)
    try:
        fd = os.open(os.path.expanduser(str(path)), os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise refused(shown, f"cannot read: {_reason(exc)}") from None
    try:
        st = os.fstat(fd)
        problem = _problem(st)
        if problem and not (lenient and stat.S_ISREG(st.st_mode)):
            raise refused(shown, problem)
        data = os.read(fd, MAX_CONFIG_BYTES + 1)
        if lenient:
            return data[:MAX_CONFIG_BYTES].decode("utf-8", errors="replace")
        if len(data) > MAX_CONFIG_BYTES:  # it grew since the check
            raise refused(shown, _problem(os.fstat(fd)) or "grew while it was read")
    except OSError as exc:
        raise refused(shown, f"cannot read: {_reason(exc)}") from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [ConfigIssue(file=shown, path="", line=line, message="not UTF-8 text")]
        ) from None
