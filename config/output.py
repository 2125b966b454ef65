"""Everything the ``alphavol`` commands print goes through here, and so through one
redaction: ``config.logsetup.redact``, the same that masks every log line.

* ``say`` (text), ``say_json`` (``--json`` documents) and ``fail`` (one line on stderr, then
  exit) are the only ways a command prints; rich renderings are written to
  ``stream(...)``, which redacts every write too.
* ``operator_errors``/``guarded`` turn the operator's own mistakes (a missing or wrong key, a corrupt
  credentials store, a directory that cannot be written, a broken or missing config) into
  one line naming the file and what to do, and exit status 2, never a traceback (a
  traceback is where secrets leak). Anything unexpected prints one redacted line and
  exits 1 (``ALPHAVOL_DEBUG=1`` adds the redacted traceback).

Exit statuses (the README's table lists them per command): 0 done; 1 the work or the
exchange failed, no supervisor answered, or it refused a request; 2 the operator's own
mistake (config, credentials, files, a port in use).
"""

from __future__ import annotations

import errno
import functools
import io
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, NoReturn, TextIO, cast

import click

from config.logsetup import redact

EXIT_OK = 0
EXIT_FAILED = 1  # the work or the exchange failed; no supervisor answers; a request refused
EXIT_OPERATOR = 2  # the operator's own mistake: config, credentials, files, a port in use


class RedactingStream(io.TextIOBase):
    """A text stream that masks secrets in every write before passing it on.

    Text only, as ``sys.stdout`` itself: bytes are refused with ``TypeError``. click probes
    whether a stream is binary by writing ``b""`` to it; a stream that took bytes (and
    printed their ``repr``) made every ``--help`` read ``b''b"Usage: ..."``."""

    def __init__(self, target: TextIO) -> None:
        self._target = target

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._target.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._target, "isatty", lambda: False)())

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True


def stream(*, err: bool = False) -> RedactingStream:
    """stdout (or stderr) as it is now, behind the redactor."""
    target = sys.stderr if err else sys.stdout
    return target if isinstance(target, RedactingStream) else RedactingStream(target)


@contextmanager
def redacted_streams() -> Iterator[None]:
    """``sys.stdout``/``sys.stderr`` behind the redactor while a command runs, so that
    whatever the command prints by other means (``print``, a log handler made meanwhile)
    is masked too."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stream(), stream(err=True)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def say(text: str = "", *, err: bool = False) -> None:
    """Print one message (any number of lines), redacted."""
    click.echo(text, file=cast(TextIO, stream(err=err)))


def say_json(doc: Any) -> None:
    """Print a ``--json`` document on stdout, redacted like everything else."""
    say(json.dumps(doc, indent=2, default=str))


def age_text(seconds: float) -> str:
    """``4d 2h``, ``3h 10m``, ``5m``: how old something is (a stored session), for people."""
    sec = max(0, int(seconds))
    days, hours, minutes = sec // 86400, sec % 86400 // 3600, sec % 3600 // 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def fail(message: str, code: int = EXIT_OPERATOR) -> NoReturn:
    """One line (or a few) on stderr, then exit ``code``."""
    say(f"alphavol: {message}", err=True)
    sys.exit(code)


class CliError(click.ClickException):
    """A problem the user must fix: printed (redacted) without a traceback, exit 2."""

    exit_code = EXIT_OPERATOR

    def format_message(self) -> str:
        return redact(self.message)

    def show(self, file: IO[Any] | None = None) -> None:
        say(f"alphavol: {self.format_message()}", err=True)


# errno values that say "this file or directory cannot be used as configured"
_FILE_PROBLEMS = {
    errno.EACCES: "make it readable and writable by the user alphavol runs as",
    errno.EPERM: "make it readable and writable by the user alphavol runs as",
    errno.EROFS: "it is on a read-only file system: point paths.data_dir/runtime_dir elsewhere",
    errno.ENOSPC: "the disk is full",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EISDIR: "it is a directory, not a file",
    errno.ENOENT: "it does not exist",
}


def explain_os_error(exc: OSError) -> str:
    """``cannot use FILE: REASON; WHAT TO DO`` for a file-system error."""
    what = exc.filename or "a file"
    hint = _FILE_PROBLEMS.get(exc.errno or 0, "")
    reason = exc.strerror or type(exc).__name__
    return f"cannot use {what}: {reason}" + (f"; {hint}" if hint else "")


def config_problems(exc: Any) -> NoReturn:
    """Every issue of a ``ConfigError`` (``file:line: path: message``), then exit 2."""
    for issue in exc.issues:
        say(str(issue), err=True)
    n = len(exc.issues)
    fail(f"{n} problem{'s' if n != 1 else ''} in the config; nothing was started.")


def _describe(exc: BaseException) -> str | None:
    """The one line for an operator's mistake, or None when ``exc`` is something else."""
    from config.credentials import CredentialsError
    from config.curl import CurlParseError

    if isinstance(exc, CredentialsError | CurlParseError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return explain_os_error(exc)
    return None


@contextmanager
def operator_errors() -> Iterator[None]:
    """Exit 2 with one line for the operator's mistakes; exit 1 with one redacted line for
    anything unexpected. click's own exits and usage errors pass through (redacted)."""
    try:
        yield
    except click.ClickException as exc:
        exc.message = redact(exc.message)  # type: ignore[misc]  # Final in the stubs only
        raise
    except (click.exceptions.Exit, click.exceptions.Abort, SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:
        from config.errors import ConfigError

        if isinstance(exc, ConfigError):
            config_problems(exc)
        described = _describe(exc)
        if described is not None:
            fail(described)
        if os.environ.get("ALPHAVOL_DEBUG"):
            say("".join(traceback.format_exception(exc)), err=True)
        fail(
            f"internal error: {type(exc).__name__}: {exc}"
            + ("" if os.environ.get("ALPHAVOL_DEBUG") else " (ALPHAVOL_DEBUG=1 shows where)"),
            EXIT_FAILED,
        )


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``operator_errors`` as a decorator for a click command's function."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with operator_errors():
            return fn(*args, **kwargs)

    return wrapper


def console(*, err: bool = False, width: int | None = None) -> Any:
    """A rich Console writing through the redactor (80 columns unless on a terminal)."""
    from config.richguard import allow_rich

    allow_rich()
    from rich.console import Console

    out = stream(err=err)
    return Console(
        file=cast(TextIO, out),
        width=width if width is not None else (None if out.isatty() else 80),
        highlight=False,
        emoji=False,
        markup=False,
    )


def show(renderable: Any, *, err: bool = False) -> None:
    """Print a rich renderable (a table ...) through the redactor."""
    console(err=err).print(renderable)
