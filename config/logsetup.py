"""structlog for the whole of alphavol, with one redaction step no log line can bypass.

Everything (our structlog loggers and stdlib loggers such as aiohttp's) goes through one
stdlib handler whose formatter runs structlog processors. Secrets are masked twice: in
every field of the event (recursively, exception text included) and again in the final
rendered line, so a secret hidden inside some object's repr is caught as well. Values are
registered with ``add_secrets`` (the credentials store does so for every session it
hands out); anything that looks like a cookie or csrftoken assignment is masked even when
its value was never registered.

Output: JSON lines when the stream is not a terminal (journald keeps one event per line),
a readable console format on a terminal.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import re
import sys
import threading
import traceback
from collections.abc import Iterable, MutableMapping
from decimal import Decimal
from typing import Any, TextIO

import structlog

MASK = "***"
MIN_SECRET_LEN = 6  # shorter values ("web", "en") would mask ordinary words

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None

# name=value / name: value where the name says "secret", whatever the value.
_SECRET_NAMES = (
    r"csrftoken|p20t|cr00|r20t|r30t|s9r1|fvideo-token|fvideo-id|x-passthrough-token"
    r"|bnc-uuid|device-info|authorization|x-auth-token"
)
_ASSIGN_RE = re.compile(
    rf"(?i)(?<![\w-])({_SECRET_NAMES})(\\?[\"']?\s*[:=]\s*\\?[\"']?)([^\s;,\"'\\&}}\]]+)"
)
# A whole cookie header: everything up to the end of the quoted string / line.
_COOKIE_RE = re.compile(
    r"(?i)(?<![\w-])(set-cookie|cookie)(\\?[\"']?\s*[:=]\s*\\?[\"']?)([^\"'\n\\]+)"
)
# The password of a URL (a proxy's: scheme://user:PASSWORD@host), however short.
_URL_AUTH_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:@/\s'\"]*:)([^@/\s'\"]+)(@)")
_HANDLER_NAME = "alphavol"


def add_secrets(values: Iterable[str]) -> None:
    """Register values to be masked everywhere from now on (short ones are ignored)."""
    global _secret_re
    new = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LEN}
    with _lock:
        if new <= _secrets:
            return
        _secrets.update(new)
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leftovers
        _secret_re = re.compile("|".join(re.escape(v) for v in ordered))


def redact(text: str) -> str:
    """``text`` with every registered secret and every cookie/token assignment masked."""
    if not isinstance(text, str):
        text = str(text)
    pattern = _secret_re
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _COOKIE_RE.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    text = _URL_AUTH_RE.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    return _ASSIGN_RE.sub(lambda m: m.group(1) + m.group(2) + MASK, text)


def redact_value(value: Any) -> Any:
    """Redact strings inside dicts, lists and tuples; other objects are left for the final
    pass over the rendered line."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)
    if isinstance(value, list | set | frozenset):
        return [redact_value(v) for v in value]
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    return value


_KEEP_KEYS = ("_record", "_from_structlog", "exc_info")


def _redact_event(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    return {k: v if k in _KEEP_KEYS else redact_value(v) for k, v in event_dict.items()}


def _install_record_factory() -> None:
    """Redact stdlib records as they are created, so that even a handler we did not set
    up (pytest's capture, a library's own) never sees a secret: the message is formatted
    and masked at once, and the traceback text is masked and cached in ``exc_text``.
    structlog's records (``msg`` is the event dict) were masked by its own chain."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "alphavol_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if isinstance(record.msg, dict):
            return record
        try:
            record.msg = redact(record.getMessage())
            record.args = ()
            if record.exc_info and record.exc_info[0] is not None:
                record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
        except Exception:  # a broken %-format: leave it to logging's own error report
            pass
        return record

    factory.alphavol_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _redact_rendered(_logger: Any, _name: str, line: Any) -> Any:
    return redact(line) if isinstance(line, str) else line


def _json_default(obj: Any) -> Any:
    """Decimals as their exact text (money), anything else as its repr."""
    if isinstance(obj, Decimal):
        return str(obj)
    return repr(obj)


def configure_logging(
    level: str = "INFO",
    fmt: str = "auto",
    *,
    stream: TextIO | None = None,
    background: bool = False,
) -> None:
    """Set up structlog and stdlib logging; safe to call again (replaces the handler).

    ``background``: lines are rendered (and redacted) where they are logged but written
    by a thread of their own, so a slow or contended output (a log file that hundreds of
    user processes append to, a journald socket that fills up) never blocks the caller's
    event loop: the supervisor keeps answering and pinging. At most ``LOG_QUEUE_LINES``
    wait; beyond that lines are dropped and counted (a ``log_lines_dropped`` line says how
    many). Whatever waits is written at exit."""
    stream = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    numeric = logging.getLevelName(str(level).upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        renderer: Any = structlog.processors.JSONRenderer(default=_json_default)
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_event,
            renderer,
            _redact_rendered,
        ],
    )
    _stop_writer()
    handler: logging.Handler = logging.StreamHandler(stream)
    if background:
        handler = _background(handler)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)

    _install_record_factory()
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            _redact_event,  # before any handler sees the record
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


# ------------------------------------------------------------------ background writing

LOG_QUEUE_LINES = 20_000
_writer: logging.handlers.QueueListener | None = None


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Renders in the caller (so a line is redacted before it is queued); never waits."""

    def __init__(self, q: queue.Queue) -> None:
        super().__init__(q)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            if self.dropped:
                note = logging.makeLogRecord(
                    {
                        "name": __name__,
                        "levelno": logging.WARNING,
                        "levelname": "WARNING",
                        "msg": f"log_lines_dropped count={self.dropped}",
                    }
                )
                self.queue.put_nowait(self.prepare(note))
                self.dropped = 0
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


def _background(target: logging.Handler) -> logging.Handler:
    global _writer
    target.setFormatter(logging.Formatter("%(message)s"))  # the line comes rendered
    q: queue.Queue = queue.Queue(LOG_QUEUE_LINES)
    _writer = logging.handlers.QueueListener(q, target)
    _writer.start()
    atexit.register(_stop_writer)
    return _DroppingQueueHandler(q)


def _stop_writer() -> None:
    """Write what waits and end the writer thread (at exit, or when logging is set up
    again)."""
    global _writer
    writer, _writer = _writer, None
    if writer is not None:
        writer.stop()
