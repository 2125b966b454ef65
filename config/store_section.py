"""The ``store:`` section of the config (issue 22): the PostgreSQL that a pool of hosts
shares (credentials, books, leases, heartbeats, commands; see ``supervisor.pool``).

```yaml
store:
  url: postgresql://alphavol@db.example:5432/alphavol
  lease_seconds: 20
  password_file: /etc/alphavol/db-password   # or in the URL, or $ALPHAVOL_STORE_PASSWORD
```

The password comes from the URL, else ``$ALPHAVOL_STORE_PASSWORD``, else the file named by
``store.password_file``. It is registered with ``config.logsetup.add_secrets`` as soon as
it is read and kept out of ``StoreSettings.url`` (which is the URL without it, safe to
show); the driver gets it as a separate connection parameter, never on a command line.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec

from config import logsetup
from config.checker import ConfigChecker
from config.schema import Rule, describe

PASSWORD_ENV = "ALPHAVOL_STORE_PASSWORD"
DEFAULT_LEASE_SECONDS = 20.0
STORE_RULES: dict[str, Rule] = {
    "url": Rule("text"),
    "lease_seconds": Rule("float", lo=Decimal(2), hi=Decimal(600)),
    "password_file": Rule("text"),
}
_SCHEMES = ("postgresql", "postgres")


class StoreSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the pool's PostgreSQL is. ``url`` never holds the password."""

    url: str  # postgresql://user@host:port/db (password removed)
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    password_file: str | None = None
    url_password: str | None = None  # from the URL; never shown (registered as a secret)

    def __repr__(self) -> str:
        return f"StoreSettings(url={self.url!r}, lease_seconds={self.lease_seconds})"

    def password(self, environ: dict[str, str] | None = None) -> str | None:
        """The URL's password, else $ALPHAVOL_STORE_PASSWORD, else the password file's."""
        env = os.environ if environ is None else environ
        value = self.url_password or env.get(PASSWORD_ENV) or None
        if value is None and self.password_file:
            value = Path(self.password_file).read_text().strip() or None
        if value:
            logsetup.add_secrets([value])
        return value

    def connect_params(self) -> dict[str, Any]:
        """Keyword parameters for the driver: host, port, user, dbname, the URL's query
        options, and the password (kept out of every text that could be shown)."""
        parts = urlsplit(self.url)
        params: dict[str, Any] = dict(parse_qsl(parts.query))
        if parts.hostname:
            params["host"] = unquote(parts.hostname)
        if parts.port:
            params["port"] = parts.port
        if parts.username:
            params["user"] = unquote(parts.username)
        db = unquote(parts.path.lstrip("/"))
        if db:
            params["dbname"] = db
        password = self.password()
        if password:
            params["password"] = password
        return params


def store_section(ctx: ConfigChecker, raw: Any, base_dir: Path) -> StoreSettings | None:
    """``store:`` checked (problems go to ``ctx``, the loader's issue collector); None
    when the config has none (one host, SQLite under data_dir)."""
    path = ("store",)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        ctx.err(
            path, f"expected a mapping (url, lease_seconds, password_file), got {describe(raw)}"
        )
        return None
    values = ctx.section(raw, path, STORE_RULES, required=("url",))
    url = values.get("url")
    if url is None:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        parts, port = None, None
    if parts is not None and parts.password:
        logsetup.add_secrets([unquote(parts.password), parts.password])  # before any output
    if parts is None or parts.scheme not in _SCHEMES or not parts.hostname:
        ctx.err(
            (*path, "url"),
            "expected postgresql://USER@HOST[:PORT]/DATABASE"
            " (the password from the URL, $ALPHAVOL_STORE_PASSWORD or store.password_file)",
        )
        return None
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if port:
        netloc = f"{netloc}:{port}"
    shown = parts._replace(netloc=netloc).geturl()
    pw_file = values.get("password_file")
    if pw_file is not None:
        file = Path(pw_file).expanduser()
        pw_file = str(file if file.is_absolute() else base_dir / file)
        if not Path(pw_file).is_file():
            ctx.err((*path, "password_file"), f"{pw_file} is not a readable file")
    return StoreSettings(
        url=shown,
        lease_seconds=values.get("lease_seconds", DEFAULT_LEASE_SECONDS),
        password_file=pw_file,
        url_password=unquote(parts.password) if parts.password else None,
    )
