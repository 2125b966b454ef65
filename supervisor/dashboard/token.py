"""The dashboard's token: ``alphavol dashboard token FILE`` (``supervisor.dashboard.cli``)
writes one, the supervisor reads it at start (a missing or empty file is the operator's
mistake: exit 2).

The token is registered as a secret (``config.logsetup``), so no log line shows it.
"""

from __future__ import annotations

import secrets

from config import logsetup
from supervisor.errors import SupervisorError

MIN_TOKEN_LEN = 16


def new_token() -> str:
    return secrets.token_urlsafe(32)


def read_token(path: str) -> str:
    """The token in ``path`` (first line, stripped); SupervisorError (exit 2) when the file
    cannot be read or holds no usable token."""
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.readline().strip()
    except OSError as exc:
        raise SupervisorError(
            f"dashboard.token_file {path}: cannot read: {exc.strerror or exc}"
            " (write one with `alphavol dashboard token FILE`)"
        ) from None
    if len(token) < MIN_TOKEN_LEN:
        raise SupervisorError(
            f"dashboard.token_file {path}: no token of at least {MIN_TOKEN_LEN} characters"
            " (write one with `alphavol dashboard token FILE`)"
        )
    logsetup.add_secrets([token])
    return token
