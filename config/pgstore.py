"""The pool's PostgreSQL (issue 22, ``store:``): its schema and the credentials in it.

Imported only when the config has ``store:`` (psycopg with it). Whichever command opens
the store first creates or migrates the schema (``migrate``): the migrations are numbered,
each runs once, and all of them run under a transaction-scoped advisory lock, so nodes
starting at the same instant apply them one after the other (the second finds the work
done). The tables:

* ``meta``, ``sessions``: the credentials, the same rows as the SQLite store's
  (``config.credentials``), sealed with the same key file (Fernet) on every host.
* ``books``: one row per round trip, written by order id (a repeat is the same row).
* ``leases``: one row per user: the node that holds it, ``epoch`` (bumped by every
  claim), ``expires_at`` (the database's clock), ``finished_day`` (done for that UTC day).
* ``nodes``: each node's heartbeat, capacity, strategies and its users' status.
* ``commands``: stop/start addressed to a user, carried out by its owner.

Connection errors become ``StoreError``, whose text names the store by its URL without
the password (``config.store_section.StoreSettings.url``) and never quotes the driver's
message unredacted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
import structlog

from config.credentials import (
    KEY_FILE_ENV,
    CredentialsError,
    CredentialStore,
    _fernet,
    key_from_environment,
)
from config.logsetup import add_secrets, redact
from config.store_section import StoreSettings
from exchange.clock import SYSTEM_CLOCK

log = structlog.get_logger(__name__)
PLAINTEXT_HINT = f"set ${KEY_FILE_ENV} on every node to encrypt the stored sessions"

CONNECT_TIMEOUT = 10  # seconds, for the CLI's connections
# pg_advisory_xact_lock key: "alphavol" as an int8, the same on every node
MIGRATION_LOCK = int.from_bytes(b"alphavol", "big") & 0x7FFF_FFFF_FFFF_FFFF

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE meta (name TEXT PRIMARY KEY, value BYTEA);
    CREATE TABLE sessions (
        user_id      TEXT PRIMARY KEY,
        label        TEXT,
        cookie_names TEXT NOT NULL,
        header_names TEXT NOT NULL,
        secret       BYTEA NOT NULL,
        encrypted    INTEGER NOT NULL,
        stored_at    TEXT NOT NULL,
        last_ok_at   TEXT
    );
    CREATE TABLE books (
        order_id    TEXT PRIMARY KEY,
        user_id     TEXT NOT NULL,
        strategy_id TEXT,
        day         TEXT NOT NULL,
        token       TEXT,
        node        TEXT NOT NULL,
        row         JSONB NOT NULL,
        recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX books_user_day ON books (user_id, day);
    CREATE TABLE leases (
        user_id      TEXT PRIMARY KEY,
        node         TEXT,
        epoch        BIGINT NOT NULL DEFAULT 0,
        expires_at   TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
        finished_day TEXT,
        finished_why TEXT
    );
    CREATE TABLE nodes (
        node         TEXT PRIMARY KEY,
        heartbeat_at TIMESTAMPTZ NOT NULL,
        started_at   TIMESTAMPTZ NOT NULL,
        capacity     INTEGER NOT NULL,
        strategies   JSONB NOT NULL,
        status       JSONB NOT NULL DEFAULT '{}'
    );
    CREATE TABLE commands (
        id          BIGSERIAL PRIMARY KEY,
        user_id     TEXT NOT NULL,
        action      TEXT NOT NULL,
        strategy_id TEXT,
        now_flag    BOOLEAN NOT NULL DEFAULT false,
        created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
        done_by     TEXT,
        done_at     TIMESTAMPTZ
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(CredentialsError):
    """The store cannot be reached or used; the text holds no secret."""


def describe_error(settings: StoreSettings, exc: BaseException) -> str:
    """One line about a failed store operation: the URL without its password, the error's
    type and its first line, redacted."""
    first = (str(exc).strip().splitlines() or [""])[0]
    detail = redact(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
    return f"the store {settings.url}: {detail}"


def migration_sql() -> str:
    """What ``migrate`` runs, as one script (the async node uses it too)."""
    steps = []
    for version, sql in enumerate(MIGRATIONS, start=1):
        steps.append(
            f"DO $m$ BEGIN IF (SELECT version FROM alphavol_schema) < {version} THEN\n"
            f"{sql}\nUPDATE alphavol_schema SET version = {version}; END IF; END $m$;"
        )
    return (
        f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK});\n"
        "CREATE TABLE IF NOT EXISTS alphavol_schema (version INTEGER NOT NULL);\n"
        "INSERT INTO alphavol_schema (version) SELECT 0"
        " WHERE NOT EXISTS (SELECT 1 FROM alphavol_schema);\n" + "\n".join(steps)
    )


def migrate(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(migration_sql().encode())  # type: ignore[call-overload]


@contextlib.contextmanager
def connect(settings: StoreSettings) -> Iterator[psycopg.Connection]:
    """A connection with the schema in place (created or migrated on first use)."""
    try:
        conn = psycopg.connect(**settings.connect_params(), connect_timeout=CONNECT_TIMEOUT)
    except (psycopg.Error, OSError) as exc:
        raise StoreError(f"cannot connect to {describe_error(settings, exc)}") from None
    try:
        migrate(conn)
        yield conn
    except psycopg.Error as exc:
        raise StoreError(f"cannot use {describe_error(settings, exc)}") from None
    finally:
        conn.close()


class _Qmark:
    """A psycopg connection that takes the SQLite store's ``?`` placeholders."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> psycopg.Cursor:
        return self.conn.execute(sql.replace("?", "%s").encode(), params)  # type: ignore[call-overload]


class StoreCredentials(CredentialStore):
    """The credentials store of ``config.credentials`` kept in the pool's PostgreSQL:
    the same rows, key check and encryption; one connection per operation."""

    def __init__(self, settings: StoreSettings, *, key: bytes | None = None) -> None:
        self.settings = settings
        self.path = settings.url  # type: ignore[assignment]  # how messages name the store
        self._clock = SYSTEM_CLOCK
        self._fernet = _fernet(key) if key else None
        if key:
            add_secrets([key.decode(errors="replace")])
        self._check_key()
        if self._fernet is None:
            log.warning("credentials_plaintext", store=settings.url, hint=PLAINTEXT_HINT)

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> StoreCredentials:
        return cls(settings, key=key_from_environment())

    def _create(self) -> None:  # the schema is migrate()'s
        pass

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Any]:
        with connect(self.settings) as conn, conn.transaction():
            yield _Qmark(conn)

    def __repr__(self) -> str:
        return f"StoreCredentials({self.settings.url!r}, encrypted={self.encrypted})"
